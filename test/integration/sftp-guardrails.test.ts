/**
 * Guardrails over SFTP, through the real gateway with the real sftp and scp clients against a
 * real OpenSSH sshd: a denied upload or removal gets the client's own "Permission denied", never
 * reaches the upstream host, and is recorded as blocked with a guardrail finding.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';
import { tempDir } from '../helpers/tmp';
import { Client as SshClient, type SFTPWrapper } from 'ssh2';
import { captureCli } from '../helpers/cli';
import type { PolicyTestReport } from '../../gateway/cli/policy-command';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sftp guardrails', { timeout: 180_000 }, () => {
  let sshd: Sshd;
  let gw: TestGateway;
  let work: string;
  let remote: string;
  let agentKey: string;
  const REASON = 'protected files are deployed, not edited';

  before(async () => {
    work = tempDir('flightlog-sftp-guard-');
    remote = tempDir('flightlog-sftp-guard-remote-');
    fs.mkdirSync(path.join(remote, 'protected'));
    fs.mkdirSync(path.join(remote, 'held'));
    fs.mkdirSync(path.join(remote, 'open'));
    sshd = await startSshd();
    gw = await startTestGateway({
      connections: [{ name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] }],
      guardrails: [
        { name: 'no-etc-writes', match: { sftp: { op: ['write', 'remove'], path: [`${remote}/protected/**`, '*.pem'] } }, action: 'deny', reason: REASON },
        { name: 'held-dir', match: { sftp: { op: 'write', path: `${remote}/held/**` } }, action: 'hold' },
        // matches whatever the login's home is; a denied mkdir never reaches it, so nothing is created there
        { name: 'probe', match: { sftp: { op: 'mkdir', path: '*/flightlog-sftp-probe-*' } }, action: 'deny', reason: 'probe' },
      ],
    });
    gw.addIdentity('claude');
    agentKey = path.join(work, 'agent_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', agentKey]);
    gw.addKey('claude', `${agentKey}.pub`);
    fs.writeFileSync(path.join(work, 'local.txt'), 'from the agent\n');
  });

  after(async () => {
    await gw?.close();
    if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
    await sshd?.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(remote, { recursive: true, force: true });
  });

  let seen = new Set<string>();
  /** the one session opened since the last call, once closed */
  const nextSession = async (): Promise<SessionDetail> => {
    for (let i = 0; i < 100; i++) {
      await gw.flush();
      const fresh = gw.sessions().filter((s) => !seen.has(s.id));
      if (fresh.length && fresh.every((s) => s.status !== 'live')) {
        for (const s of fresh) seen.add(s.id);
        assert.equal(fresh.length, 1);
        return gw.show(fresh[0].id);
      }
      await sleep(50);
    }
    throw new Error('no new closed session');
  };

  const sftp = async (lines: string[]) => {
    const batch = path.join(work, 'batch');
    fs.writeFileSync(batch, lines.join('\n') + '\n');
    const a = gw.address('web');
    const r = await run('sftp', [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), '-b', batch, `claude@${a.host}`]);
    return { ...r, session: await nextSession() };
  };

  const blocked = (s: SessionDetail): CommandView[] => s.commands.filter((c) => c.kind === 'sftp' && c.status === 'blocked');
  const message = `flightlog: blocked by guardrail "no-etc-writes": ${REASON}`;

  before(() => {
    seen = new Set(gw.sessions().map((s) => s.id));
  });

  it('refuses a put into a protected dir with Permission denied; the file never appears upstream', async () => {
    const target = `${remote}/protected/new.txt`;
    const r = await sftp([`put ${work}/local.txt ${target}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(fs.existsSync(target), false);
    const [cmd] = blocked(r.session);
    assert.equal(cmd?.text, `write ${target}`);
    assert.equal(cmd.error, message);
    const finding = gw.findings().find((f) => f.category === 'guardrail' && f.commandId === cmd.id);
    assert.equal(finding?.kind, 'no-etc-writes');
    const d = finding.detail as { rule: string; action: string; outcome: string; reason: string };
    assert.deepEqual([d.rule, d.action, d.outcome, d.reason], ['no-etc-writes', 'deny', 'denied', REASON]);
  });

  it('refuses rm of a protected file, which stays; the session goes on and a put elsewhere succeeds', async () => {
    const keep = `${remote}/protected/keep.txt`;
    fs.writeFileSync(keep, 'keep me\n');
    // `-` lets the batch go on after a failed command: the refusal must leave the channel usable
    const r = await sftp([`-rm ${keep}`, `-put ${work}/local.txt ${remote}/open/key.pem`, `put ${work}/local.txt ${remote}/open/ok.txt`, `get ${remote}/protected/keep.txt ${work}/keep-back.txt`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(fs.readFileSync(keep, 'utf8'), 'keep me\n');
    assert.equal(fs.existsSync(`${remote}/open/key.pem`), false, '*.pem matches under any directory');
    assert.equal(fs.readFileSync(`${remote}/open/ok.txt`, 'utf8'), 'from the agent\n');
    assert.equal(fs.readFileSync(`${work}/keep-back.txt`, 'utf8'), 'keep me\n', 'reading a protected file is not a write');
    assert.deepEqual(blocked(r.session).map((c) => c.text), [`remove ${keep}`, `write ${remote}/open/key.pem`]);
    assert.ok(r.session.commands.some((c) => c.text === `write ${remote}/open/ok.txt` && c.status === 'ok'));
  });

  it('resolves .. before matching, so a path cannot climb into a protected dir unseen', async () => {
    const r = await sftp([`put ${work}/local.txt ${remote}/open/../protected/sneaky.txt`]);
    assert.notEqual(r.code, 0);
    assert.equal(fs.existsSync(`${remote}/protected/sneaky.txt`), false);
    assert.deepEqual(blocked(r.session).map((c) => c.text), [`write ${remote}/protected/sneaky.txt`]);
  });

  it('a hold rule denies over SFTP and says approval is not available there', async () => {
    const r = await sftp([`put ${work}/local.txt ${remote}/held/x.txt`]);
    assert.notEqual(r.code, 0);
    assert.equal(fs.existsSync(`${remote}/held/x.txt`), false);
    const [cmd] = blocked(r.session);
    assert.match(cmd?.error ?? '', /^flightlog: blocked by guardrail "held-dir": .*approval is not available over SFTP/);
  });

  it('scp (SFTP mode, the default) gets the same refusal', async () => {
    const target = `${remote}/protected/by-scp.txt`;
    const a = gw.address('web');
    const r = await run('scp', [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), `${work}/local.txt`, `claude@${a.host}:${target}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(fs.existsSync(target), false);
    const s = await nextSession();
    assert.deepEqual(blocked(s).map((c) => [c.text, c.error]), [[`write ${target}`, message]]);
  });

  it('policy test: an sftp rule tried over recorded history finds the uploads it would have stopped', async () => {
    await gw.flush();
    const file = path.join(work, 'try.yaml');
    fs.writeFileSync(file, `guardrails:\n  - name: open-dir\n    match: { sftp: { op: write, path: "${remote}/open/**" } }\n    action: deny\n`);
    const r = await captureCli(['policy', 'test', '--config', file, '--data-dir', gw.dataDir, '--since', '1h', '--json'], { env: { ...process.env } });
    assert.equal(r.code, 0, r.stderr);
    const rule = (JSON.parse(r.stdout) as PolicyTestReport).rules.find((x) => x.name === 'open-dir');
    assert.ok(rule && rule.wouldStop >= 1, JSON.stringify(rule));
    assert.ok(rule.examples.some((e) => e.text === `write ${remote}/open/ok.txt` && e.status === 'ok'), JSON.stringify(rule.examples));
  });

  it('a relative path is matched from the login\'s home; the client reads the rule in the status message', async () => {
    const a = gw.address('web');
    const name = `flightlog-sftp-probe-${process.pid}`;
    let home = '';
    const conn = new SshClient();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', resolve).once('error', reject);
      conn.connect({ host: a.host, port: a.port, username: 'claude', privateKey: fs.readFileSync(agentKey) });
    });
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => conn.sftp((err, s) => (err ? reject(err) : resolve(s))));
      home = await new Promise<string>((resolve, reject) => sftp.realpath('.', (err, p) => (err ? reject(err) : resolve(p))));
      const err = await new Promise<(Error & { code?: number }) | undefined>((resolve) => sftp.mkdir(name, (e) => resolve(e ?? undefined)));
      assert.equal(err?.code, 3, 'SSH_FX_PERMISSION_DENIED');
      assert.equal(err?.message, 'flightlog: blocked by guardrail "probe": probe');
      assert.equal(fs.existsSync(path.join(home, name)), false);
      // the channel still answers after the refusal
      assert.equal(await new Promise<string>((resolve, reject) => sftp.realpath('/', (e, p) => (e ? reject(e) : resolve(p)))), '/');
      sftp.end();
    } finally {
      conn.end();
    }
    const s = await nextSession();
    assert.deepEqual(blocked(s).map((c) => c.text), [`mkdir ${home}/${name}`]);
  });
});
