/**
 * Client compatibility over SSH: each real client runs against the test sshd directly and then
 * through the gateway, in the same test, and must see the same thing (output, files, exit
 * codes); the gateway's recording of it is checked too. Interactive shells run under tmux.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { clientOptions, freePort, run, startSshd, type Sshd } from '../helpers/sshd';
import { listEvents, search } from '../../gateway/store/queries';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Relative path → file content, for comparing two copied trees. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else out[r] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

interface Side {
  name: 'direct' | 'gateway';
  port: number;
  user: string;
  /** ssh client options: no config, no known_hosts, the side's key */
  opts: string[];
  /** `ssh` command line for GIT_SSH_COMMAND and rsync -e */
  sshCommand: string;
}

describe('ssh client compatibility, direct vs through the gateway', { timeout: 150_000 }, () => {
  let sshd: Sshd;
  let gw: TestGateway;
  let work: string;
  let sides: Side[];
  const children: ChildProcess[] = [];
  /** one tmux server per side: a server exits with its last session, and must not be reused while it does */
  const tmuxSock = (side: string) => path.join(work, `tmux-${side}.sock`);

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-compat-ssh-'));
    sshd = await startSshd();
    gw = await startTestGateway({
      connections: [
        {
          name: 'compat',
          protocol: 'ssh',
          upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } },
          identities: ['agent'],
          options: { allowForwarding: true },
        },
      ],
    });
    gw.addIdentity('agent');
    const agentKey = path.join(work, 'agent_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', agentKey]);
    gw.addKey('agent', `${agentKey}.pub`);
    const a = gw.address('compat');
    const side = (name: Side['name'], port: number, user: string, key: string): Side => {
      const opts = clientOptions(port, { keyPath: key });
      return { name, port, user, opts, sshCommand: ['ssh', ...opts, '-p', String(port)].map((x) => `'${x}'`).join(' ') };
    };
    sides = [side('direct', sshd.port, sshd.user, sshd.userKeyPath), side('gateway', a.port, 'agent', agentKey)];
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const side of ['direct', 'gateway']) {
      try {
        if (work) execFileSync('tmux', ['-S', tmuxSock(side), 'kill-server'], { stdio: 'ignore' });
      } catch {
        // no server left
      }
    }
    await gw?.close();
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** The newest closed gateway session whose commands satisfy `has`. */
  const gatewaySession = async (has: (c: CommandView[]) => boolean): Promise<SessionDetail> => {
    for (let i = 0; i < 100; i++) {
      await gw.flush();
      const found = gw
        .sessions()
        .filter((s) => s.status !== 'live')
        .map((s) => gw.show(s.id))
        .find((s) => has(s.commands));
      if (found) return found;
      await sleep(100);
    }
    throw new Error('no closed gateway session with the expected commands');
  };

  it('git clone and push over ssh (GIT_SSH_COMMAND)', async () => {
    const bare = path.join(work, 'repo.git');
    const seed = path.join(work, 'seed');
    const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd }).toString();
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    fs.mkdirSync(seed);
    git(seed, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(seed, 'README'), 'hello\n');
    git(seed, 'add', '.');
    git(seed, 'commit', '-q', '-m', 'seed');
    git(seed, 'push', '-q', bare, 'main');
    const seen: Record<string, { clone: number | null; push: number | null; log: string; files: Record<string, string> }> = {};
    for (const s of sides) {
      const env = { ...process.env, GIT_SSH_COMMAND: s.sshCommand, GIT_TERMINAL_PROMPT: '0' };
      const dir = path.join(work, `clone-${s.name}`);
      const clone = await run('git', ['clone', '-q', `${s.user}@127.0.0.1:${bare}`, dir], { env });
      assert.equal(clone.code, 0, `${s.name} clone: ${clone.stderr}`);
      fs.writeFileSync(path.join(dir, `${s.name}.txt`), `from ${s.name}\n`);
      git(dir, 'add', '.');
      git(dir, 'commit', '-q', '-m', `from ${s.name}`);
      const pushed = await run('git', ['-C', dir, 'push', '-q', 'origin', `HEAD:refs/heads/${s.name}`], { env });
      seen[s.name] = { clone: clone.code, push: pushed.code, log: git(dir, 'log', '--format=%s').trim(), files: { README: fs.readFileSync(path.join(dir, 'README'), 'utf8') } };
    }
    assert.deepEqual(seen.gateway.clone, seen.direct.clone);
    assert.equal(seen.direct.push, 0);
    assert.equal(seen.gateway.push, 0);
    assert.deepEqual(seen.gateway.files, seen.direct.files);
    const refs = execFileSync('git', ['-C', bare, 'for-each-ref', '--format=%(refname:short) %(subject)']).toString().trim().split('\n').sort();
    assert.deepEqual(refs, ['direct from direct', 'gateway from gateway', 'main seed']);
    const s = await gatewaySession((cs) => cs.some((c) => c.text.startsWith('git-receive-pack')));
    const recv = s.commands.find((c) => c.text.startsWith('git-receive-pack'));
    assert.equal(recv?.status, 'ok');
  });

  it('rsync -a, scp -r (sftp and legacy -O) and sftp -b copy the same trees', async () => {
    const src = path.join(work, 'src-tree');
    for (let i = 0; i < 60; i++) {
      const d = path.join(src, `d${i % 4}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}.txt`), `file ${i}\n`.repeat(1 + i));
    }
    const want = treeOf(src);
    for (const s of sides) {
      const dest = (what: string) => path.join(work, `${what}-${s.name}`);
      const rsync = await run('rsync', ['-a', '-e', s.sshCommand, `${src}/`, `${s.user}@127.0.0.1:${dest('rsync')}/`], { timeoutMs: 30_000 });
      assert.equal(rsync.code, 0, `${s.name} rsync: ${rsync.stderr}`);
      assert.deepEqual(treeOf(dest('rsync')), want, `${s.name} rsync tree`);
      const scp = await run('scp', [...s.opts, '-q', '-r', '-P', String(s.port), src, `${s.user}@127.0.0.1:${dest('scp')}`], { timeoutMs: 30_000 });
      assert.equal(scp.code, 0, `${s.name} scp: ${scp.stderr}`);
      assert.deepEqual(treeOf(dest('scp')), want, `${s.name} scp tree`);
      const legacy = await run('scp', ['-O', ...s.opts, '-q', '-r', '-P', String(s.port), src, `${s.user}@127.0.0.1:${dest('scp-O')}`], { timeoutMs: 30_000 });
      assert.equal(legacy.code, 0, `${s.name} scp -O: ${legacy.stderr}`);
      assert.deepEqual(treeOf(dest('scp-O')), want, `${s.name} scp -O tree`);
      const down = await run('scp', [...s.opts, '-q', '-r', '-P', String(s.port), `${s.user}@127.0.0.1:${dest('scp')}`, dest('scp-back')], { timeoutMs: 30_000 });
      assert.equal(down.code, 0, `${s.name} scp download: ${down.stderr}`);
      assert.deepEqual(treeOf(dest('scp-back')), want, `${s.name} scp download tree`);
    }
    // sftp -b prints each command it runs and what ls lists: the same text either way.
    const out: Record<string, { code: number | null; stdout: string }> = {};
    for (const s of sides) {
      const dir = path.join(work, `sftp-${s.name}`);
      fs.mkdirSync(dir);
      const batch = path.join(work, `batch-${s.name}`);
      fs.writeFileSync(batch, [`cd ${dir}`, `put ${src}/d0/f0.txt`, `put ${src}/d1/f1.txt two.txt`, 'mkdir sub', 'rename two.txt sub/two.txt', 'ls -1', 'ls -1 sub', `get sub/two.txt ${dir}-back.txt`, '-rm nothing-here', 'rm f0.txt'].join('\n') + '\n');
      const r = await run('sftp', [...s.opts, '-P', String(s.port), '-b', batch, `${s.user}@127.0.0.1`]);
      out[s.name] = { code: r.code, stdout: r.stdout.split(dir).join('DIR').split(batch).join('BATCH') };
      assert.equal(fs.readFileSync(`${dir}-back.txt`, 'utf8'), want['d1/f1.txt']);
    }
    assert.equal(out.direct.code, 0);
    assert.deepEqual(out.gateway, out.direct);
    const s = await gatewaySession((cs) => cs.some((c) => c.kind === 'sftp' && c.text.endsWith('/sub')));
    assert.ok(s.commands.some((c) => c.text.startsWith('mkdir ') && c.text.endsWith('/sub')));
  });

  it('ssh -L forwards a TCP service the same way', async () => {
    const echo = net.createServer((c) => c.pipe(c));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as net.AddressInfo).port;
    try {
      const replies: Record<string, string> = {};
      for (const s of sides) {
        const local = await freePort();
        const c = spawn('ssh', [...s.opts, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:127.0.0.1:${echoPort}`, '-p', String(s.port), `${s.user}@127.0.0.1`], { stdio: 'ignore' });
        children.push(c);
        // The local port is up once ssh has logged in and bound it.
        const listening = (): boolean => {
          try {
            return execFileSync('ss', ['-ltnH', `sport = :${local}`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
          } catch {
            return false;
          }
        };
        await until(`${s.name} forward on ${local}`, listening);
        const msgs = ['one\n', 'two\n', 'three\n'];
        replies[s.name] = await new Promise<string>((resolve, reject) => {
          const conn = net.connect(local, '127.0.0.1');
          let got = '';
          let i = 0;
          conn.on('connect', () => conn.write(msgs[i++]));
          conn.on('data', (d) => {
            got += d.toString();
            if (got.split('\n').length - 1 === i && i < msgs.length) conn.write(msgs[i++]);
            else if (i === msgs.length && got.endsWith(msgs[msgs.length - 1])) conn.end();
          });
          conn.on('close', () => resolve(got));
          conn.on('error', reject);
        });
        c.kill('SIGTERM');
        await new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)));
      }
      assert.equal(replies.direct, 'one\ntwo\nthree\n');
      assert.equal(replies.gateway, replies.direct);
      const s = await gatewaySession((cs) => cs.some((c) => c.kind === 'forward'));
      const fwd = s.commands.find((c) => c.kind === 'forward');
      assert.equal((fwd?.result as { bytesToUpstream: number }).bytesToUpstream, 'one\ntwo\nthree\n'.length);
    } finally {
      echo.close();
    }
  });

  it('ssh -t under tmux: vim, Ctrl-C, exit codes, the same screen; commands recorded exactly', async () => {
    const screens: Record<string, string> = {};
    const codes: Record<string, string> = {};
    for (const s of sides) {
      const tmux = (...args: string[]) => execFileSync('tmux', ['-S', tmuxSock(s.name), ...args]).toString();
      const codeFile = path.join(work, `tty-${s.name}.code`);
      const ssh = ['ssh', ...s.opts, '-t', '-p', String(s.port), `${s.user}@127.0.0.1`].map((x) => `'${x}'`).join(' ');
      // A plain prompt makes the two screens comparable; the rest of the login is as usual.
      tmux('new-session', '-d', '-s', s.name, '-x', '100', '-y', '40', `${ssh}; echo $? > ${codeFile}`);
      const screen = () => tmux('capture-pane', '-p', '-t', s.name).replace(/\s+$/, '');
      const waitFor = (re: RegExp) => until(`${s.name} screen ${re}: ${screen()}`, () => re.test(screen()), 15_000);
      const type = async (line: string, re: RegExp) => {
        tmux('send-keys', '-t', s.name, '-l', line);
        tmux('send-keys', '-t', s.name, 'Enter');
        await waitFor(re);
      };
      await waitFor(/[#$]\s*$/m);
      await type("PS1='compat$ '", /\ncompat\$$/);
      await type('clear', /^compat\$$/);
      tmux('send-keys', '-t', s.name, '-l', 'vim.tiny -u NONE -N');
      tmux('send-keys', '-t', s.name, 'Enter');
      await waitFor(/VIM - Vi IMproved/);
      tmux('send-keys', '-t', s.name, '-l', ':q');
      tmux('send-keys', '-t', s.name, 'Enter');
      await waitFor(/vim.tiny -u NONE -N\ncompat\$$/);
      await type('sleep 30', /\ncompat\$ sleep 30$/);
      // Ctrl-C once sleep runs (capture-pane trims the line break that would tell).
      await until('sleep 30 running', () => {
        try {
          return execFileSync('pgrep', ['-fx', 'sleep 30']).toString().trim() !== '';
        } catch {
          return false;
        }
      });
      tmux('send-keys', '-t', s.name, 'C-c');
      await waitFor(/\^C\ncompat\$$/);
      await type('echo "rc=$?"', /\nrc=130\ncompat\$$/);
      await type('false', /compat\$ false\ncompat\$$/);
      await type('echo "rc=$?"', /\nrc=1\ncompat\$$/);
      await type("bash -c 'exit 3'", /exit 3'\ncompat\$$/);
      await type('echo "rc=$?"', /\nrc=3\ncompat\$$/);
      screens[s.name] = screen().replace(/\s+$/, '');
      tmux('send-keys', '-t', s.name, '-l', 'exit 3');
      tmux('send-keys', '-t', s.name, 'Enter');
      codes[s.name] = await until(`${s.name} exit code`, () => (fs.existsSync(codeFile) && fs.readFileSync(codeFile, 'utf8').trim()) || null);
    }
    assert.equal(codes.direct, '3');
    assert.equal(codes.gateway, codes.direct);
    assert.equal(screens.gateway, screens.direct, 'the agent sees the same screen, no hook, no marks');

    const s = await gatewaySession((cs) => cs.some((c) => c.text === 'sleep 30'));
    const shell = s.commands.filter((c) => c.kind === 'shell');
    const ev = listEvents(gw.gateway.db, s.id, { limit: 100_000 }).events;
    const marks = ev.find((e) => e.kind === 'shell-marks')?.data as { method: string; shell: string; hook: string };
    assert.deepEqual([marks.method, marks.shell], ['injected', 'bash']);
    assert.deepEqual(
      shell.map((c) => [c.text, c.status, (c.result as { exitCode: number | null } | null)?.exitCode ?? null]),
      [
        ["PS1='compat$ '", 'ok', 0],
        ['clear', 'ok', 0],
        ['vim.tiny -u NONE -N', 'ok', 0],
        ['sleep 30', 'error', 130],
        ['echo "rc=$?"', 'ok', 0],
        ['false', 'error', 1],
        ['echo "rc=$?"', 'ok', 0],
        ["bash -c 'exit 3'", 'error', 3],
        ['echo "rc=$?"', 'ok', 0],
        ['exit 3', 'error', 3],
      ],
    );
    assert.equal((s.meta as { shellMarks?: string }).shellMarks, 'injected');
    assert.match(marks.hook, /PROMPT_COMMAND=/, 'what the gateway typed is on the record');
    assert.deepEqual(s.findings, [], 'and it is no finding');
    // A command's output is its own: the next line's echo is not in it, and it ends when it ends.
    const falseCmd = shell.find((c) => c.text === 'false') as CommandView;
    const falseOut = ev.filter((e) => e.kind === 'o' && e.commandId === falseCmd.id).map((e) => String(e.data)).join('');
    assert.doesNotMatch(falseOut, /rc=/);
    const sleepCmd = shell.find((c) => c.text === 'sleep 30') as CommandView;
    const next = shell[shell.indexOf(sleepCmd) + 1];
    assert.ok(sleepCmd.endUs !== null && sleepCmd.endUs <= next.startUs, 'sleep ends at Ctrl-C, not when the next line is typed');
    const recorded = ev.filter((e) => e.kind === 'o').map((e) => String(e.data)).join('');
    assert.doesNotMatch(recorded, /__fl_pc|133;flightlog/, 'the hook is hidden from the recording');
  });

  it('ssh -tt with commands piped in (an agent): recorded one by one, searchable, 80x24', async () => {
    const input = 'echo piped-marker-one\nfalse\necho "rc=$?"\nls /nonexistent-compat-dir\nexit\n';
    const out: Record<string, { code: number | null; lines: string[] }> = {};
    for (const s of sides) {
      const r = await run('ssh', [...s.opts, '-tt', '-p', String(s.port), `${s.user}@127.0.0.1`], { input, timeoutMs: 20_000 });
      const text = r.stdout.replace(/\r/g, '');
      out[s.name] = { code: r.code, lines: ['piped-marker-one', 'rc=1', 'No such file or directory'].filter((l) => text.split('\n').some((x) => x.includes(l) && !x.includes('echo'))) };
    }
    assert.equal(out.direct.code, 2, 'the exit status of the last command');
    assert.deepEqual(out.gateway, out.direct);
    const s = await gatewaySession((cs) => cs.some((c) => c.text === 'echo piped-marker-one'));
    const shell = s.commands.filter((c) => c.kind === 'shell');
    assert.deepEqual(
      shell.map((c) => [c.text, (c.result as { exitCode: number | null } | null)?.exitCode ?? null]),
      [
        ['echo piped-marker-one', 0],
        ['false', 1],
        ['echo "rc=$?"', 0],
        ['ls /nonexistent-compat-dir', 2],
        ['exit', 2],
      ],
    );
    const pty = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events.find((e) => e.kind === 'pty')?.data as { cols: number; rows: number };
    assert.deepEqual([pty.cols, pty.rows], [80, 24]);
    const hits = search(gw.gateway.db, 'piped-marker-one');
    assert.ok(hits.some((h) => h.sessionId === s.id && h.text === 'echo piped-marker-one'), 'found by search');
  });
});
