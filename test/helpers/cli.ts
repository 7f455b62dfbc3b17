import { PassThrough } from 'node:stream';
import { runCli, type Io } from '../../gateway/cli/main';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command in this process with captured output (`fn` defaults to the whole CLI). */
export async function captureCli(argv: string[], opts: { env?: NodeJS.ProcessEnv; fn?: (argv: string[], io: Io) => Promise<number> } = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await (opts.fn ?? runCli)(argv, { stdout, stderr, stdin: new PassThrough(), env: opts.env ?? {} });
  return { code, stdout: out, stderr: err };
}
