/**
 * A real OpenSSH sshd on 127.0.0.1 for tests (temp host key, config and authorized user key), and
 * small helpers to drive the real `ssh`, `scp` and `sftp` clients against the gateway.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { reapAtExit, tempDir } from './tmp';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** private key the upstream accepts (what the gateway logs in with) */
  userKeyPath: string;
  hostKeyPath: string;
  /** the host key's public half, OpenSSH "type base64" form */
  hostPublicKey(): string;
  dir: string;
  stop(): Promise<void>;
  /** New host key, sshd restarted on the same port: what a re-installed (or spoofed) host looks like. */
  regenerateHostKey(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function keygen(file: string, comment: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** Resolves once something on host:port speaks SSH. */
async function waitForSsh(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.setTimeout(1000);
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString('latin1').startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd on ${host}:${port} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(opts: { extraConfig?: string } = {}): Promise<Sshd> {
  if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('sshd is not installed (/usr/sbin/sshd): apt-get install openssh-server');
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = tempDir('flightlog-sshd-');
  const hostKeyPath = path.join(dir, 'host_ed25519');
  const userKeyPath = path.join(dir, 'user_ed25519');
  keygen(hostKeyPath, 'test-host');
  keygen(userKeyPath, 'test-user');
  fs.copyFileSync(`${userKeyPath}.pub`, path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const user = os.userInfo().username;
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyPath}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin yes',
      'AcceptEnv LANG LC_* TERM FLIGHTLOG_*',
      'AllowTcpForwarding yes',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      'PrintMotd no',
      'PrintLastLog no',
      'LogLevel ERROR',
      opts.extraConfig ?? '',
    ].join('\n') + '\n',
  );

  let child: ChildProcess | null = null;
  const stderr: string[] = [];
  const launch = async (): Promise<void> => {
    const c = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    child = c;
    // A child outlives a test process that ends without stop(): kill it at exit at the latest.
    const forget = reapAtExit(() => c.kill('SIGKILL'));
    c.once('exit', () => forget());
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`sshd exited with ${code}: ${stderr.join('').trim()}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForSsh('127.0.0.1', port), exited]);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  await launch();

  return {
    host: '127.0.0.1',
    port,
    user,
    userKeyPath,
    hostKeyPath,
    dir,
    hostPublicKey: () => fs.readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' '),
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async regenerateHostKey() {
      await kill();
      keygen(hostKeyPath, 'test-host-2');
      await launch();
    },
  };
}

/** A tiny SSH_ASKPASS script that prints the token: OpenSSH ≥ 8.4 uses it with SSH_ASKPASS_REQUIRE=force. */
export function askpassEnv(dir: string, token: string): NodeJS.ProcessEnv {
  const tokenFile = path.join(dir, `token-${process.pid}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const script = `${tokenFile}.sh`;
  fs.writeFileSync(script, `#!/bin/sh\ncat '${tokenFile}'\n`, { mode: 0o700 });
  return { ...process.env, SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
}

/** Common client options: no host key prompts, no config surprises, password (token) auth or a key. */
export function clientOptions(port: number, auth: { keyPath?: string } = {}): string[] {
  const o = [
    '-F', '/dev/null',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    // INFO, not ERROR: banners and channel-open failure reasons are printed at INFO.
    '-o', 'LogLevel=INFO',
    '-o', 'ConnectTimeout=10',
    '-o', 'NumberOfPasswordPrompts=1',
  ];
  if (auth.keyPath) o.push('-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', auth.keyPath);
  else o.push('-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no');
  return o;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a client binary to completion; input (if any) is written to its stdin. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    c.once('error', reject);
    c.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    c.stdin.on('error', () => undefined);
    c.stdin.end(opts.input);
  });
}
