/**
 * Guardrails on interactive shells: a line typed into a pty shell is decided when Enter is
 * pressed, before the Enter reaches the host. A refused line is discarded by the shell, the
 * agent sees one line saying why, the session records it as blocked with the rule's finding,
 * and the shell stays usable. Real sshd, real ssh client, tmux for the interactive terminal.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: () => string, probe: () => T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await sleep(50);
  }
}

describe('ssh: typed shell lines are checked by guardrails when Enter is pressed', { timeout: 90_000 }, () => {
  let sshd: Sshd;
  let gw: TestGateway;
  let work: string;
  let agentKey: string;
  const tmuxSock = () => path.join(work, 'tmux.sock');

  before(async () => {
    work = tempDir('flightlog-shellguard-');
    sshd = await startSshd();
    gw = await startTestGateway({
      connections: [
        {
          name: 'box',
          protocol: 'ssh',
          upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } },
          identities: ['agent'],
        },
      ],
      guardrails: [{ name: 'no-rm-rf', match: { shell: { program: 'rm', flags: ['r', 'f'] } }, action: 'deny' }],
    });
    gw.addIdentity('agent');
    agentKey = path.join(work, 'agent_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', agentKey]);
    gw.addKey('agent', `${agentKey}.pub`);
  });

  after(async () => {
    try {
      if (work) execFileSync('tmux', ['-S', tmuxSock(), 'kill-server'], { stdio: 'ignore' });
    } catch {
      // no server left
    }
    await gw?.close();
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const sshArgs = (): string[] => {
    const a = gw.address('box');
    return [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), `agent@${a.host}`];
  };

  /** The newest closed session whose commands satisfy `has`. */
  const closedSession = async (has: (c: CommandView[]) => boolean): Promise<SessionDetail> => {
    return until(
      () => 'a closed session with the blocked command',
      () => {
        const found = gw
          .sessions()
          .filter((s) => s.status !== 'live')
          .map((s) => gw.show(s.id))
          .find((s) => has(s.commands));
        return found ?? null;
      },
    );
  };

  const assertBlockedRecorded = (s: SessionDetail, text: string): void => {
    const blocked = s.commands.find((c) => c.kind === 'shell' && c.status === 'blocked');
    assert.ok(blocked, 'the refused line is a blocked command');
    assert.equal(blocked.text, text);
    const finding = s.findings.find((f) => f.category === 'guardrail' && f.commandId === blocked.id);
    assert.ok(finding, 'with a guardrail finding');
    assert.equal(finding.kind, 'no-rm-rf');
    assert.equal((finding.detail as { action: string }).action, 'deny');
    assert.ok(!s.commands.some((c) => c.status !== 'blocked' && /\brm\b/.test(c.text)), 'the refused line never ran as a command');
  };

  it('ssh -tt with piped lines: each line is checked, the refused one never runs, the rest do', async () => {
    const dir = path.join(work, 'piped');
    await gw.flush();
    const r = await run('ssh', [...sshArgs().slice(0, -1), '-tt', sshArgs().at(-1)!], {
      input: `mkdir -p ${dir}/sub; echo ok1\nrm -rf ${dir}\necho ok2\nexit\n`,
    });
    const out = r.stdout + r.stderr;
    assert.ok(fs.existsSync(path.join(dir, 'sub')), `the directory survives: ${out}`);
    assert.match(out, /^ok1\r?$/m);
    assert.match(out, /^ok2\r?$/m);
    assert.match(out, /flightlog: blocked by guardrail "no-rm-rf"/);
    assert.equal(r.code, 0);
    const s = await closedSession((cs) => cs.some((c) => c.status === 'blocked' && c.text.includes(dir)));
    assertBlockedRecorded(s, `rm -rf ${dir}`);
    assert.ok(s.commands.some((c) => c.text === 'echo ok2'), 'the line after the refused one ran');
  });

  it('ssh -tt: a line continued with a backslash is decided joined, and the whole command is abandoned', async () => {
    const dir = path.join(work, 'continued');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const r = await run('ssh', [...sshArgs().slice(0, -1), '-tt', sshArgs().at(-1)!], { input: `rm \\\n-rf ${dir}\necho ok3\nexit\n` });
    const out = r.stdout + r.stderr;
    assert.ok(fs.existsSync(path.join(dir, 'sub')), `the directory survives: ${out}`);
    assert.match(out, /flightlog: blocked by guardrail "no-rm-rf"/);
    assert.match(out, /^ok3\r?$/m);
    const s = await closedSession((cs) => cs.some((c) => c.status === 'blocked' && c.text.includes(dir)));
    assertBlockedRecorded(s, `rm -rf ${dir}`);
  });

  it('ssh without a pty reads a script from stdin: the refused line is left out, the rest runs', async () => {
    const dir = path.join(work, 'script');
    const r = await run('ssh', sshArgs(), { input: `mkdir -p ${dir}/sub; echo ok1\nrm -rf ${dir}\necho ok2\n` });
    assert.ok(fs.existsSync(path.join(dir, 'sub')), `the directory survives: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, 'ok1\nok2\n');
    assert.match(r.stderr, /^flightlog: blocked by guardrail "no-rm-rf"/m);
    assert.equal(r.code, 0);
    const s = await closedSession((cs) => cs.some((c) => c.status === 'blocked' && c.text.includes(dir)));
    assertBlockedRecorded(s, `rm -rf ${dir}`);
  });

  it('ssh without a pty: a refused line continuing one already sent ends the session, nothing of it runs', async () => {
    const dir = path.join(work, 'script-continued');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const r = await run('ssh', sshArgs(), { input: `rm \\\n-rf ${dir}\necho ok4\n` });
    assert.ok(fs.existsSync(path.join(dir, 'sub')), `the directory survives: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^flightlog: blocked by guardrail "no-rm-rf"/m);
    assert.doesNotMatch(r.stdout, /ok4/);
    assert.equal(r.code, 126);
    const s = await closedSession((cs) => cs.some((c) => c.status === 'blocked' && c.text.includes(dir)));
    assertBlockedRecorded(s, `rm -rf ${dir}`);
  });

  it('ssh -t under tmux: a typed `sudo rm -fr` is refused and the shell stays usable', async () => {
    const dir = path.join(work, 'typed');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const tmux = (...args: string[]) => execFileSync('tmux', ['-S', tmuxSock(), ...args]).toString();
    const ssh = ['ssh', ...sshArgs().slice(0, -1), '-t', sshArgs().at(-1)!].map((x) => `'${x}'`).join(' ');
    tmux('new-session', '-d', '-s', 'typed', '-x', '120', '-y', '40', ssh);
    const screen = () => tmux('capture-pane', '-p', '-t', 'typed');
    const waitFor = (re: RegExp) => until(() => `screen ${re}: ${screen()}`, () => re.test(screen()));
    await waitFor(/[#$]\s*$/m);
    tmux('send-keys', '-t', 'typed', '-l', `sudo rm -fr ${dir}`);
    tmux('send-keys', '-t', 'typed', 'Enter');
    await waitFor(/flightlog: blocked by guardrail "no-rm-rf"/);
    tmux('send-keys', '-t', 'typed', '-l', 'echo "af""ter"');
    tmux('send-keys', '-t', 'typed', 'Enter');
    await waitFor(/^after\s*$/m);
    assert.ok(fs.existsSync(path.join(dir, 'sub')), 'the directory survives');
    // Completed by the shell (Tab): the keys alone do not tell the line, the echo does. The
    // keys go one by one, so most of the line already sits in the shell when Enter comes.
    const tabDir = path.join(work, 'tabdir-unique');
    fs.mkdirSync(tabDir);
    for (const k of `rm -rf ${path.join(work, 'tabd')}`) tmux('send-keys', '-t', 'typed', '-l', k);
    tmux('send-keys', '-t', 'typed', 'Tab');
    await waitFor(/tabdir-unique\/\s*$/m);
    tmux('send-keys', '-t', 'typed', 'Enter');
    await until(
      () => `a second refusal: ${screen()}`,
      () => screen().match(/flightlog: blocked by guardrail "no-rm-rf"/g)?.length === 2,
    );
    tmux('send-keys', '-t', 'typed', '-l', 'echo "still""here"');
    tmux('send-keys', '-t', 'typed', 'Enter');
    await waitFor(/^stillhere\s*$/m);
    assert.ok(fs.existsSync(tabDir), 'the completed line did not run');
    // A key a program swallowed (`q` to a pager that keeps the main screen) is not part of the
    // next line; typed key by key, the echo shows the line the shell really has.
    const pagerDir = path.join(work, 'pager');
    fs.mkdirSync(pagerDir);
    fs.writeFileSync(path.join(work, 'page.txt'), 'page-line\n');
    tmux('send-keys', '-t', 'typed', '-l', `clear; less -X ${path.join(work, 'page.txt')}`);
    tmux('send-keys', '-t', 'typed', 'Enter');
    await waitFor(/\(END\)/);
    tmux('send-keys', '-t', 'typed', '-l', 'q');
    await waitFor(/[#$]\s*$/);
    const pagerLine = `rm -rf ${pagerDir}`;
    for (const k of pagerLine) tmux('send-keys', '-t', 'typed', '-l', k);
    await waitFor(new RegExp(`${pagerLine.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s*$`));
    tmux('send-keys', '-t', 'typed', 'Enter');
    await until(
      () => `a refusal after the pager: ${screen()}`,
      () => screen().match(/flightlog: blocked by guardrail "no-rm-rf"/g)?.length === 1,
    );
    tmux('send-keys', '-t', 'typed', '-l', 'echo "pager""done"');
    tmux('send-keys', '-t', 'typed', 'Enter');
    await waitFor(/^pagerdone\s*$/m);
    assert.ok(fs.existsSync(pagerDir), 'the line after the pager did not run');
    tmux('send-keys', '-t', 'typed', '-l', 'exit');
    tmux('send-keys', '-t', 'typed', 'Enter');
    const s = await closedSession((cs) => cs.some((c) => c.status === 'blocked' && c.text.includes(dir)));
    assertBlockedRecorded(s, `sudo rm -fr ${dir}`);
    assert.ok(
      s.commands.some((c) => c.status === 'blocked' && c.text === `rm -rf ${tabDir}/`),
      `the completed line is recorded as the shell showed it: ${JSON.stringify(s.commands.map((c) => [c.text, c.status]))}`,
    );
    assert.ok(s.commands.some((c) => c.text === 'echo "af""ter"' && c.status === 'ok'), 'the next line ran');
  });
});
