/**
 * A shell line a `hold` rule matches waits for a human before its Enter reaches the host: lines
 * piped into `ssh -tt` after it queue behind it, approving runs it, denying discards it with the
 * denier's name on the terminal. Real sshd and ssh client through the real gateway; the decision
 * is made with the real CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { captureCli, waitForPending } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import type { PendingApproval } from '../../gateway/common/api-types';

let sshd: Sshd;
let gw: TestGateway;
let work: string;
let agentKey: string;

before(async () => {
  work = tempDir('flightlog-shellhold-');
  sshd = await startSshd();
  gw = await startTestGateway({
    connections: [
      { name: 'box', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['agent'] },
    ],
    guardrails: [{ name: 'hold-touch', match: { shell: { program: 'touch' } }, action: 'hold', reason: 'new files need a look' }],
  });
  gw.addIdentity('agent');
  agentKey = path.join(work, 'agent_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', agentKey]);
  gw.addKey('agent', `${agentKey}.pub`);
});

after(async () => {
  await gw?.close();
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function sshTt(input: string): ReturnType<typeof run> {
  const a = gw.address('box');
  return run('ssh', [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), '-tt', `agent@${a.host}`], { input });
}

const pendingFor = (text: RegExp): Promise<PendingApproval> => waitForPending(gw.dataDir, text);

test('ssh -tt: a held line waits, the lines after it queue; approved it runs', async () => {
  const file = path.join(work, 'approved.txt');
  const session = sshTt(`echo before\ntouch ${file}\necho after\nexit\n`);
  const p = await pendingFor(/approved\.txt/);
  assert.equal(p.rule, 'hold-touch');
  assert.equal(fs.existsSync(file), false, 'nothing runs while the line waits');
  assert.equal((await captureCli(['approve', p.id, '--data-dir', gw.dataDir], { env: { ...process.env, USER: 'alice' } })).code, 0);
  const r = await session;
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, out);
  assert.ok(fs.existsSync(file), `approved, the line ran: ${out}`);
  assert.match(out, /holds this line for approval/);
  assert.match(out, /^after\r?$/m);
  await gw.flush();
  const decided = gw.findings().find((f) => f.category === 'guardrail' && (f.detail as Record<string, unknown>).approvalId === p.id);
  assert.equal((decided?.detail as Record<string, unknown>).decidedBy, 'alice');
});

test('ssh -tt: a held line denied is discarded with the denier named, and the shell goes on', async () => {
  const file = path.join(work, 'denied.txt');
  const session = sshTt(`touch ${file}\necho still-here\nexit\n`);
  const p = await pendingFor(/denied\.txt/);
  assert.equal((await captureCli(['deny', p.id, '--reason', 'not now', '--data-dir', gw.dataDir], { env: { ...process.env, USER: 'bob' } })).code, 0);
  const r = await session;
  const out = r.stdout + r.stderr;
  assert.equal(fs.existsSync(file), false, 'denied, the line never ran');
  assert.match(out, /flightlog: blocked by guardrail "hold-touch": denied by bob \(not now\)/);
  assert.match(out, /^still-here\r?$/m);
  await gw.flush();
  const blocked = gw.sessions().flatMap((s) => gw.show(s.id).commands).find((c) => c.status === 'blocked' && c.text.includes('denied.txt'));
  assert.ok(blocked, 'the denied line is a blocked command');
});
