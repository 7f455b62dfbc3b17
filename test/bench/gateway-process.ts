/**
 * The real `flightlog gateway` as a process of its own, for benchmarks that measure it from the
 * outside (`bench:ssh-cpu`, `bench:soak`): its stderr (a log line per connection) goes to a
 * file, and it is killed when the bench process exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { reapAtExit } from '../helpers/tmp';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

export interface GatewayProcess {
  child: ChildProcess;
  /** the port of each connection, by name, from its `listening` line */
  ports: Record<string, number>;
  /** what it printed on stdout up to `ready` */
  out: string;
}

export async function startGatewayProcess(o: { configFile: string; dataDir: string; logFile: string; env?: NodeJS.ProcessEnv; nodeArgs?: string[] }): Promise<GatewayProcess> {
  const log = fs.openSync(o.logFile, 'a');
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), BIN, 'gateway', '--config', o.configFile, '--data-dir', o.dataDir], {
    stdio: ['ignore', 'pipe', log],
    env: o.env ?? process.env,
  });
  fs.closeSync(log);
  const forget = reapAtExit(() => child.kill('SIGKILL'));
  child.once('exit', () => forget());
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the gateway did not become ready: ${out}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}: ${out}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const ports: Record<string, number> = {};
  for (const m of out.matchAll(/^listening\s+(\S+) \(\w+\) 127\.0\.0\.1:(\d+)$/gm)) ports[m[1]] = Number(m[2]);
  return { child, ports, out };
}
