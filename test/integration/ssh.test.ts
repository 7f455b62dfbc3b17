/**
 * The SSH gateway against a real OpenSSH sshd, driven by the real ssh, scp and sftp clients.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { askpassEnv, clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { listEvents } from '../../gateway/store/queries';
import type { EventView, SessionDetail } from '../../gateway/common/api-types';
import { tempDir } from '../helpers/tmp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ssh gateway', { timeout: 180_000 }, () => {
  let sshd: Sshd;
  let pinnedSshd: Sshd;
  let gw: TestGateway;
  let token: string;
  let work: string;
  let agentKey: string;
  let remote: string;

  before(async () => {
    work = tempDir('flightlog-ssh-test-');
    remote = tempDir('flightlog-ssh-remote-');
    [sshd, pinnedSshd] = await Promise.all([startSshd(), startSshd()]);
    const upstream = (s: Sshd) => ({ host: s.host, port: s.port, user: s.user, privateKey: { file: s.userKeyPath } });
    gw = await startTestGateway({
      connections: [
        { name: 'web', protocol: 'ssh', upstream: upstream(sshd), identities: ['claude'] },
        { name: 'web-fwd', protocol: 'ssh', upstream: upstream(sshd), identities: ['claude'], options: { allowForwarding: true, envAllow: ['LANG', 'FLIGHTLOG_OK'] } },
        { name: 'web-pinned', protocol: 'ssh', upstream: upstream(pinnedSshd), identities: ['claude'] },
        { name: 'web-config-pin', protocol: 'ssh', upstream: { ...upstream(sshd), hostKey: pinnedSshd.hostPublicKey() }, identities: ['claude'] },
        { name: 'web-other', protocol: 'ssh', upstream: upstream(sshd), identities: ['someone-else'] },
      ],
    });
    token = gw.addIdentity('claude');
    agentKey = path.join(work, 'agent_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', agentKey]);
    gw.addKey('claude', `${agentKey}.pub`);
  });

  after(async () => {
    await gw?.close();
    if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
    await Promise.all([sshd?.stop(), pinnedSshd?.stop()]);
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(remote, { recursive: true, force: true });
  });

  /** ssh with the token as the password */
  const sshToken = (conn: string, args: string[], opts: { token?: string; input?: string; extra?: string[] } = {}) => {
    const a = gw.address(conn);
    return run('ssh', [...clientOptions(a.port), ...(opts.extra ?? []), '-p', String(a.port), `claude@${a.host}`, ...args], {
      env: askpassEnv(work, opts.token ?? token),
      input: opts.input,
    });
  };
  /** ssh with the agent's registered key */
  const sshKey = (conn: string, args: string[], extra: string[] = []) => {
    const a = gw.address(conn);
    return run('ssh', [...clientOptions(a.port, { keyPath: agentKey }), ...extra, '-p', String(a.port), `claude@${a.host}`, ...args]);
  };

  const latestSession = async (conn: string): Promise<SessionDetail> => {
    // The session closes when the client's connection does; give the gateway a moment.
    for (let i = 0; i < 50; i++) {
      await gw.flush();
      const s = gw.sessions().filter((x) => x.connection === conn);
      if (s.length && s.every((x) => x.status !== 'live')) {
        s.sort((x, y) => (x.startedAt < y.startedAt ? 1 : x.startedAt > y.startedAt ? -1 : 0));
        return gw.show(s[0].id);
      }
      await sleep(100);
    }
    throw new Error(`no closed session on ${conn}`);
  };
  const sessionsOn = (conn: string) => gw.sessions().filter((x) => x.connection === conn);
  const events = (id: string): EventView[] => listEvents(gw.gateway.db, id, { limit: 100_000 }).events;

  it('runs an exec request with the token as password and records command, output and exit code', async () => {
    const r = await sshToken('web', ['echo hello-out; echo hello-err >&2; exit 3']);
    assert.equal(r.stdout, 'hello-out\n');
    assert.match(r.stderr, /hello-err/);
    assert.equal(r.code, 3);
    const s = await latestSession('web');
    assert.equal(s.identity, 'claude');
    assert.equal(s.protocol, 'ssh');
    const cmd = s.commands.find((c) => c.kind === 'exec');
    assert.ok(cmd, 'exec command recorded');
    assert.equal(cmd.text, 'echo hello-out; echo hello-err >&2; exit 3');
    assert.equal((cmd.result as { exitCode: number }).exitCode, 3);
    assert.equal(cmd.status, 'error');
    const ev = events(s.id);
    assert.ok(ev.some((e) => e.kind === 'o' && String(e.data).includes('hello-out')));
    assert.ok(ev.some((e) => e.kind === 'e' && String(e.data).includes('hello-err')));
    assert.ok(ev.some((e) => e.kind === 'exit' && (e.data as { code: number }).code === 3));
    const learned = ev.find((e) => e.kind === 'host-key-learned')?.data as { key: string; fingerprint: string } | undefined;
    assert.ok(learned, 'first use of the upstream host key is recorded');
    // A host's public key is no secret: recorded as it is, and no finding in every session.
    const hostFp = execFileSync('ssh-keygen', ['-lf', `${sshd.hostKeyPath}.pub`]).toString().split(' ')[1];
    assert.equal(learned.key, sshd.hostPublicKey());
    assert.equal(learned.fingerprint, hostFp);
    assert.equal((ev.find((e) => e.kind === 'upstream')?.data as { hostKey: string }).hostKey, hostFp);
    assert.deepEqual(s.findings.map((f) => f.kind), [], 'no findings in a session that saw no secret');
  });

  it('accepts a registered public key and relays stdin, exit signals', async () => {
    const r = await sshKey('web', ['cat; kill -TERM $$']);
    assert.equal(r.code, 255);
    const r2 = await run('ssh', [...clientOptions(gw.address('web').port, { keyPath: agentKey }), '-p', String(gw.address('web').port), 'claude@127.0.0.1', 'tr a-z A-Z'], { input: 'shout\n' });
    assert.equal(r2.stdout, 'SHOUT\n');
    assert.equal(r2.code, 0);
    const s = await latestSession('web');
    const cmd = s.commands.find((c) => c.text === 'tr a-z A-Z');
    assert.ok(cmd);
    assert.equal(cmd.status, 'ok');
    const sig = gw.sessions().filter((x) => x.connection === 'web').map((x) => gw.show(x.id)).flatMap((x) => x.commands).find((c) => c.text.startsWith('cat; kill'));
    assert.equal((sig?.result as { signal: string }).signal, 'SIGTERM');
  });

  it('refuses a bad token and records the failed attempt', async () => {
    const before = gw.findings().filter((f) => f.kind === 'failed-login').length;
    const r = await sshToken('web', ['true'], { token: 'flt_' + 'x'.repeat(40) });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
    await gw.flush();
    const after = gw.findings().filter((f) => f.kind === 'failed-login').length;
    assert.ok(after > before, 'failed login recorded');
  });

  it('refuses an identity that may not use the connection, saying so', async () => {
    const r = await sshToken('web-other', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /may not use connection 'web-other'/);
    assert.equal(sessionsOn('web-other').length, 0);
  });

  it('denies port forwarding by default with a clear message', async () => {
    const r = await sshToken('web', ['-W', '127.0.0.1:9'].slice(0, 0), { extra: ['-W', '127.0.0.1:9'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /port forwarding is disabled on connection 'web'/);
    await gw.flush();
    assert.ok(gw.findings().some((f) => f.kind === 'forwarding-denied'));
  });

  it('forwards and records a port forward when the connection allows it; env per allow-list', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const port = (echo.address() as net.AddressInfo).port;
    try {
      const r = await sshToken('web-fwd', [], { extra: ['-W', `127.0.0.1:${port}`], input: 'ping-through-tunnel\n' });
      assert.equal(r.stdout, 'ping-through-tunnel\n');
      const s = await latestSession('web-fwd');
      const fwd = s.commands.find((c) => c.kind === 'forward');
      assert.ok(fwd, 'forward command recorded');
      assert.ok(fwd.text.includes(`127.0.0.1:${port}`));
      const res = fwd.result as { bytesToUpstream: number; bytesFromUpstream: number };
      assert.equal(res.bytesToUpstream, 'ping-through-tunnel\n'.length);
      assert.equal(res.bytesFromUpstream, 'ping-through-tunnel\n'.length);
    } finally {
      echo.close();
    }
    const e = await sshToken('web-fwd', ['echo "[$LANG][$FLIGHTLOG_OK][$FLIGHTLOG_NO]"'], {
      extra: ['-o', 'SetEnv=LANG=C.UTF-8 FLIGHTLOG_OK=yes FLIGHTLOG_NO=leak'],
    });
    assert.equal(e.stdout, '[C.UTF-8][yes][]\n');
  });

  it('pins the upstream host key and refuses a changed one, naming both fingerprints', async () => {
    const first = await sshToken('web-pinned', ['echo ok']);
    assert.equal(first.stdout, 'ok\n');
    const oldFp = execFileSync('ssh-keygen', ['-lf', `${pinnedSshd.hostKeyPath}.pub`]).toString().split(' ')[1];
    const known = JSON.parse(fs.readFileSync(path.join(gw.dataDir, 'ssh', 'known_hosts.json'), 'utf8')) as Record<string, { fingerprint: string }>;
    assert.equal(known['web-pinned'].fingerprint, oldFp);
    await pinnedSshd.regenerateHostKey();
    const newFp = execFileSync('ssh-keygen', ['-lf', `${pinnedSshd.hostKeyPath}.pub`]).toString().split(' ')[1];
    const r = await sshToken('web-pinned', ['echo should-not-run']);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /should-not-run/);
    assert.match(r.stderr, /host key of connection 'web-pinned' has changed/);
    assert.ok(r.stderr.includes(oldFp) && r.stderr.includes(newFp), r.stderr);
    await gw.flush();
    assert.ok(gw.findings().some((f) => f.kind === 'host-key-changed'));
    // A key pinned in the config is enforced from the first connection on.
    const c = await sshToken('web-config-pin', ['echo should-not-run']);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /host key of connection 'web-config-pin' has changed/);
  });

  it('records an sftp upload and edit with the content before and after', async () => {
    const target = path.join(remote, 'notes.txt');
    fs.writeFileSync(target, 'line one\nline two\n');
    const local = path.join(work, 'notes.txt');
    fs.writeFileSync(local, 'line one\nline two, edited\nline three\n');
    fs.writeFileSync(path.join(work, 'new.txt'), 'brand new\n');
    const batch = path.join(work, 'batch');
    fs.writeFileSync(batch, [`put ${local} ${target}`, `put ${path.join(work, 'new.txt')} ${remote}/new.txt`, `mkdir ${remote}/sub`, `rename ${remote}/new.txt ${remote}/sub/moved.txt`, `chmod 600 ${remote}/sub/moved.txt`, `get ${target} ${work}/back.txt`, `rm ${remote}/sub/moved.txt`].join('\n') + '\n');
    const a = gw.address('web');
    const r = await run('sftp', [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), '-b', batch, `claude@${a.host}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, 'utf8'), 'line one\nline two, edited\nline three\n');
    assert.equal(fs.readFileSync(`${work}/back.txt`, 'utf8'), 'line one\nline two, edited\nline three\n');
    const s = await latestSession('web');
    const sftp = s.commands.filter((c) => c.kind === 'sftp');
    const write = sftp.find((c) => c.text === `write ${target}`);
    assert.ok(write, `write recorded: ${sftp.map((c) => c.text).join(' | ')}`);
    const res = write.result as { bytesWritten: number; diff: { before: string; after: string } };
    assert.equal(res.bytesWritten, 'line one\nline two, edited\nline three\n'.length);
    assert.equal(res.diff.before, 'line one\nline two\n');
    assert.equal(res.diff.after, 'line one\nline two, edited\nline three\n');
    const created = sftp.find((c) => c.text === `write ${remote}/new.txt`);
    assert.equal((created?.result as { diff: { before: null; after: string } }).diff.before, null);
    assert.ok(sftp.some((c) => c.text === `mkdir ${remote}/sub`));
    assert.ok(sftp.some((c) => c.text.startsWith('posix-rename@openssh.com') || c.text.startsWith('rename')));
    assert.ok(sftp.some((c) => c.text.startsWith('setstat') && c.targets.includes(`${remote}/sub/moved.txt`)));
    assert.ok(sftp.some((c) => c.text === `remove ${remote}/sub/moved.txt`));
    const read = sftp.find((c) => c.text === `read ${target}`);
    assert.equal((read?.result as { bytesRead: number }).bytesRead, 'line one\nline two, edited\nline three\n'.length);
  });

  
  it('says when the legacy scp file list was cut, and how many entries there were', async () => {
    const tree = path.join(work, 'many');
    fs.mkdirSync(tree);
    for (let i = 0; i < 1020; i++) fs.writeFileSync(path.join(tree, `f${i}.txt`), `${i}\n`);
    const a = gw.address('web');
    const r = await run('scp', ['-O', '-r', ...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), tree, `claude@${a.host}:${remote}/`], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readdirSync(path.join(remote, 'many')).length, 1020);
    const s = await latestSession('web');
    const scpCmd = s.commands.find((c) => c.kind === 'exec' && c.text.startsWith('scp '));
    const res = scpCmd?.result as { files: unknown[]; filesTruncated?: boolean; filesTotal?: number };
    assert.equal(res.files.length, 1000);
    assert.equal(res.filesTruncated, true);
    assert.equal(res.filesTotal, 1021, 'one directory and 1,020 files');
    fs.rmSync(path.join(remote, 'many'), { recursive: true, force: true });
  });

  it('moves a large file both ways through scp and exec with flat memory and a bounded recording', async () => {
    const size = 48 * 1024 * 1024;
    const big = path.join(work, 'big.bin');
    fs.writeFileSync(big, randomBytes(size));
    const sha = createHash('sha256').update(fs.readFileSync(big)).digest('hex');
    const a = gw.address('web');
    const rssBefore = process.memoryUsage().rss;
    const up = await run('scp', [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), big, `claude@${a.host}:${remote}/big.bin`], { timeoutMs: 30_000 });
    assert.equal(up.code, 0, `${up.stderr}\n${gw.logs.slice(-10).join('\n')}`);
    assert.equal(createHash('sha256').update(fs.readFileSync(`${remote}/big.bin`)).digest('hex'), sha);
    const s1 = await latestSession('web');
    const w = s1.commands.find((c) => c.text === `write ${remote}/big.bin`);
    assert.equal((w?.result as { bytesWritten: number }).bytesWritten, size);
    // legacy scp protocol: an exec of scp -t, with the file names recorded
    const legacy = await run('scp', ['-O', ...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), big, `claude@${a.host}:${remote}/big2.bin`], { timeoutMs: 120_000 });
    assert.equal(legacy.code, 0, legacy.stderr);
    const s2 = await latestSession('web');
    const scpCmd = s2.commands.find((c) => c.kind === 'exec' && c.text.startsWith('scp '));
    assert.ok(scpCmd);
    const files = (scpCmd.result as { files: Array<{ name: string; size: number }> }).files;
    assert.deepEqual(files.map((f) => [f.name, f.size]), [['big.bin', size]]);
    // download via exec: the recording keeps a head, plus the full size and hash
    const out = path.join(work, 'down.bin');
    const fd = fs.openSync(out, 'w');
    const dl = await new Promise<number | null>((resolve) => {
      const c = require('node:child_process').spawn('ssh', [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), `claude@${a.host}`, `cat ${remote}/big.bin`], { stdio: ['ignore', fd, 'ignore'] });
      c.on('close', (code: number | null) => resolve(code));
    });
    fs.closeSync(fd);
    assert.equal(dl, 0);
    assert.equal(createHash('sha256').update(fs.readFileSync(out)).digest('hex'), sha);
    const s3 = await latestSession('web');
    const cat = s3.commands.find((c) => c.text === `cat ${remote}/big.bin`);
    const stdout = (cat?.result as { stdout: { bytes: number; sha256: string; truncated: boolean } }).stdout;
    assert.equal(stdout.bytes, size);
    assert.equal(stdout.sha256, sha);
    assert.equal(stdout.truncated, true);
    assert.ok(events(s3.id).length < 200, 'the recording holds a head, not the whole stream');
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 150 * 1024 * 1024, `gateway process grew by ${Math.round(grown / 1048576)} MiB`);
  });

  it('records an interactive PTY shell: commands from echo, resize, exit; a planted secret never reaches the data dir', async () => {
    const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
    gw.gateway.masker.addKnownSecret('planted', secret);
    fs.writeFileSync(path.join(remote, 'secret.txt'), `API_KEY=${secret}\n`);
    const a = gw.address('web');
    const sock = path.join(work, 'tmux.sock');
    const tmux = (...args: string[]) => execFileSync('tmux', ['-S', sock, ...args]).toString();
    const sshCmd = ['ssh', ...clientOptions(a.port, { keyPath: agentKey }), '-tt', '-p', String(a.port), `claude@${a.host}`].map((x) => `'${x}'`).join(' ');
    tmux('new-session', '-d', '-s', 'agent', '-x', '100', '-y', '30', sshCmd);
    const screen = () => tmux('capture-pane', '-p', '-t', 'agent');
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100; i++) {
        if (re.test(screen())) return;
        await sleep(100);
      }
      throw new Error(`screen never matched ${re}: ${screen()}`);
    };
    try {
      await waitFor(/[#$]\s*$/m);
      tmux('send-keys', '-t', 'agent', '-l', 'echo hello-from-shell');
      tmux('send-keys', '-t', 'agent', 'Enter');
      await waitFor(/^hello-from-shell$/m);
      tmux('send-keys', '-t', 'agent', '-l', `cat ${remote}/secret.txt`);
      tmux('send-keys', '-t', 'agent', 'Enter');
      await waitFor(/^API_KEY=/m);
      tmux('send-keys', '-t', 'agent', '-l', `echo ${secret} | wc -c`);
      tmux('send-keys', '-t', 'agent', 'Enter');
      await waitFor(/^\s*\d+$/m);
      tmux('resize-window', '-t', 'agent', '-x', '120', '-y', '40');
      await sleep(300);
      tmux('send-keys', '-t', 'agent', '-l', 'stty size');
      tmux('send-keys', '-t', 'agent', 'Enter');
      await waitFor(/^40 120$/m);
      tmux('send-keys', '-t', 'agent', '-l', 'exit');
      tmux('send-keys', '-t', 'agent', 'Enter');
      for (let i = 0; i < 50; i++) {
        try {
          tmux('has-session', '-t', 'agent');
        } catch {
          break;
        }
        await sleep(100);
      }
    } finally {
      try {
        tmux('kill-server');
      } catch {
        // already gone with its last session
      }
    }
    const s = await latestSession('web');
    const texts = s.commands.filter((c) => c.kind === 'shell').map((c) => c.text);
    assert.deepEqual(texts.slice(0, 2), ['echo hello-from-shell', `cat ${remote}/secret.txt`]);
    assert.ok(texts[2].startsWith('echo [MASKED:planted:') && texts[2].endsWith('| wc -c'), texts[2]);
    assert.deepEqual(texts.slice(3), ['stty size', 'exit']);
    const ev = events(s.id);
    const pty = ev.find((e) => e.kind === 'pty');
    assert.deepEqual([(pty?.data as { cols: number }).cols, (pty?.data as { rows: number }).rows], [100, 30]);
    assert.ok(ev.some((e) => e.kind === 'r' && e.data === '120x40'), 'resize recorded');
    assert.ok(ev.some((e) => e.kind === 'i'));
    const hello = s.commands.find((c) => c.text === 'echo hello-from-shell');
    assert.ok(ev.some((e) => e.kind === 'o' && e.commandId === hello?.id && String(e.data).includes('hello-from-shell')), 'output belongs to its command');
    assert.ok(ev.some((e) => e.kind === 'exit'));
    const offsets = ev.map((e) => e.tUs);
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), 'microsecond offsets are monotonic');
    assert.ok(s.findings.some((f) => f.kind === 'planted' && f.seenByAgent), 'the sighting is a finding');
    // exec also carries it, in the command line and the output
    const e = await sshToken('web', [`echo ${secret}; cat ${remote}/secret.txt`]);
    assert.ok(e.stdout.includes(secret), 'mask: record leaves traffic untouched');
    await gw.flush();
    assert.deepEqual(gw.grepDataDir(secret), []);
  });
});
