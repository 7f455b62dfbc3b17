/**
 * What runs "in the container" for exec and attach: a real process on this machine, in a
 * per-pod work dir, with a pseudo-terminal when `tty=true` (python3's pty module: node-pty is
 * not installed), resizable through a control pipe, and its exit code reported the way the
 * kubelet does on the error channel: a `Status` (Success, or NonZeroExitCode with an ExitCode cause).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { KubeStatus } from './status';
import { reapAtExit } from '../tmp';

// Relays between our pipes and a pty; fd 3 carries `{"Width":w,"Height":h}` lines for resizes.
const PTY_HELPER = `
import os, sys, pty, select, fcntl, termios, struct, json
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def put(f, data):
    while data:
        n = os.write(f, data)
        data = data[n:]
fds = [0, fd, 3]
ctl = b''
while True:
    r = select.select(fds, [], [])[0]
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        put(1, data)
    if 0 in r:
        data = os.read(0, 65536)
        if data:
            put(fd, data)
        else:
            fds.remove(0)
            put(fd, b'\\x04')
    if 3 in r:
        data = os.read(3, 4096)
        if not data:
            fds.remove(3)
        ctl += data
        while b'\\n' in ctl:
            line, ctl = ctl.split(b'\\n', 1)
            try:
                w = json.loads(line)
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', int(w['Height']), int(w['Width']), 0, 0))
            except Exception:
                pass
status = os.waitpid(pid, 0)[1]
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;

export interface ContainerProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  resize(width: number, height: number): void;
  /** resolves with the Status for the error channel once the process has exited and its output is read */
  done: Promise<KubeStatus>;
  kill(): void;
}

export interface ProcessSpec {
  argv: string[];
  tty: boolean;
  cwd: string;
  pod: string;
}

const children = new Set<ChildProcess>();

/** Kills whatever exec/attach processes are still running (the fixture is closing). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

export function startProcess(spec: ProcessSpec): ContainerProcess {
  fs.mkdirSync(spec.cwd, { recursive: true });
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: spec.cwd, HOSTNAME: spec.pod, LANG: 'C.UTF-8', ...(spec.tty ? { TERM: 'xterm' } : {}) };
  const child = spec.tty
    ? spawn('python3', ['-c', PTY_HELPER, ...spec.argv], { cwd: spec.cwd, env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] })
    : spawn(spec.argv[0], spec.argv.slice(1), { cwd: spec.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  // A test process that dies without closing the fixture still takes its "containers" along.
  const forget = reapAtExit(() => child.kill('SIGKILL'));
  const ctl = spec.tty ? (child.stdio[3] as Writable) : undefined;
  ctl?.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  const done = new Promise<KubeStatus>((resolve) => {
    let spawnError: Error | undefined;
    child.once('error', (e) => {
      spawnError = e;
    });
    child.once('close', (code, signal) => {
      children.delete(child);
      forget();
      const argv = JSON.stringify(spec.argv).slice(1, -1).replace(/","/g, ' ').replace(/"/g, '');
      if (spawnError) {
        resolve({
          kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'InternalError', code: 500,
          message: `Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: "${spec.argv[0]}": executable file not found in $PATH: unknown`,
        });
        return;
      }
      const exit = code ?? (signal ? 128 + (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as Record<string, number>)[signal] ?? 1) : 1);
      if (exit === 0) resolve({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
      else {
        resolve({
          kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', code: 500,
          message: `command terminated with non-zero exit code: error executing command [${argv}], exit code ${exit}`,
          details: { causes: [{ reason: 'ExitCode', message: String(exit) }] },
        });
      }
    });
  });
  return {
    stdin: child.stdin as Writable,
    stdout: child.stdout as Readable,
    stderr: child.stderr as Readable,
    resize(width, height) {
      if (ctl && !ctl.destroyed) ctl.write(JSON.stringify({ Width: width, Height: height }) + '\n');
    },
    done,
    kill() {
      child.kill('SIGKILL');
    },
  };
}

export function containerDir(workDir: string, namespace: string, pod: string, container: string): string {
  return path.join(workDir, namespace, pod, container);
}
