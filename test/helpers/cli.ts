import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { PassThrough } from 'node:stream';
import { runCli, type Io } from '../../gateway/cli/main';
import type { PendingApproval } from '../../gateway/common/api-types';

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

/** Polls `flightlog pending --json` until an approval whose (masked) text matches appears. */
export async function waitForPending(dataDir: string, text: RegExp, ms = 20_000): Promise<PendingApproval> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await captureCli(['pending', '--json', '--data-dir', dataDir], { env: { ...process.env } });
    const hit = r.code === 0 ? (JSON.parse(r.stdout) as PendingApproval[]).find((p) => text.test(p.commandText)) : undefined;
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no pending approval for ${text}: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a client program to its end with stdin closed; its exit code, 1 for a signal. */
export function execClient(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end();
  });
}

/** bin/flightlog.js, as a user runs it */
export const FLIGHTLOG_BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

/**
 * Runs the real `flightlog` CLI as its own process with exactly `env` (tests remove variables a
 * developer's shell may hold, so nothing is merged in) until it exits; its output, and its exit
 * code (null after a signal).
 */
export function spawnFlightlog(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [FLIGHTLOG_BIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
