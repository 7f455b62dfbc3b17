/**
 * A finding says which way the secret went. A Stripe key inside a file the agent uploads over
 * SFTP, or pipes in with `cat > f`, was sent by the agent (`client→upstream`), not "seen by
 * agent"; the same key in a file the agent downloads is `upstream→client` and seen. An HTTP
 * request body is the client's too, unless the upstream echoes it back. Real sftp, ssh and
 * HTTP clients through the gateway against a real OpenSSH sshd and a Node HTTP upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recordedCommand, startTestGateway, type TestGateway } from '../helpers/gateway';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import type { FindingView, SessionDetail } from '../../gateway/common/api-types';
import { tempDir } from '../helpers/tmp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('finding direction', { timeout: 180_000 }, () => {
  let sshd: Sshd;
  let upstream: HttpUpstream;
  let token: string;
  let gw: TestGateway;
  let work: string;
  let remote: string;
  let agentKey: string;
  // split so this file never holds the literal a scanner would flag
  const STRIPE = ['sk', 'live', 'Zq4Xw8Lm2Np6Rt0Vb3Yc7Hd1'].join('_');
  const STRIPE_DOWN = ['sk', 'live', 'Dn9Kp2Ws5Xr8Tq1Mv4Bz7Lc3'].join('_');
  const STRIPE_POST = ['sk', 'live', 'Pq7Hn3Vx8Zc2Lm5Kt9Rw1Bj4'].join('_');
  const STRIPE_ECHO = ['sk', 'live', 'Ec4Ho1Ty6Ui9Op2As5Df8Gh3'].join('_');
  const seen = new Set<string>();

  before(async () => {
    work = tempDir('flightlog-direction-');
    remote = tempDir('flightlog-direction-remote-');
    sshd = await startSshd();
    upstream = await startHttpUpstream();
    gw = await startTestGateway({
      connections: [
        { name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] },
        { name: 'api', protocol: 'http', upstream: { url: upstream.url }, identities: ['claude'] },
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
    await sshd?.stop();
    await upstream?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (remote) fs.rmSync(remote, { recursive: true, force: true });
  });

  /** the one session opened since the last call, once closed */
  const nextSession = async (): Promise<SessionDetail> => {
    for (let i = 0; i < 200; i++) {
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

  const stripeFindings = (s: SessionDetail): FindingView[] => s.findings.filter((f) => f.category === 'secret' && f.kind === 'stripe-secret-key');

  it('a key in an uploaded file is client→upstream, not seen by the agent', async () => {
    fs.writeFileSync(path.join(work, 'config.env'), `STRIPE_KEY=${STRIPE}\n`);
    const batch = path.join(work, 'batch');
    fs.writeFileSync(batch, `put ${work}/config.env ${remote}/config.env\n`);
    const a = gw.address('web');
    const r = await run('sftp', [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), '-b', batch, `claude@${a.host}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(`${remote}/config.env`, 'utf8'), `STRIPE_KEY=${STRIPE}\n`, 'the upload itself is untouched');
    const s = await nextSession();
    const write = s.commands.find((c) => c.text === `write ${remote}/config.env`);
    assert.ok(write, 'the upload is recorded');
    const found = stripeFindings(s).filter((f) => f.commandId === write.id);
    assert.ok(found.length > 0, 'the planted key is found');
    assert.deepEqual(
      found.map((f) => [f.direction, f.seenByAgent]),
      found.map(() => ['client→upstream', false]),
      `directions: ${found.map((f) => f.direction).join(', ')}`,
    );
  });

  it('the same kind of key in a downloaded file is upstream→client and seen by the agent', async () => {
    fs.writeFileSync(`${remote}/secrets.env`, `STRIPE_KEY=${STRIPE_DOWN}\n`);
    const a = gw.address('web');
    const r = await run('ssh', [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), `claude@${a.host}`, `cat ${remote}/secrets.env`]);
    assert.equal(r.code, 0, r.stderr);
    const s = await nextSession();
    const found = stripeFindings(s);
    assert.ok(found.some((f) => f.direction === 'upstream→client' && f.seenByAgent), `directions: ${found.map((f) => f.direction).join(', ')}`);
  });

  it('a key piped into `cat > f` on stdin is client→upstream only', async () => {
    const a = gw.address('web');
    const r = await run('ssh', [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), `claude@${a.host}`, `cat > ${remote}/piped.env`], { input: `KEY=${STRIPE}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(`${remote}/piped.env`, 'utf8'), `KEY=${STRIPE}\n`);
    const s = await nextSession();
    const found = stripeFindings(s);
    assert.ok(found.length > 0, 'the piped key is found');
    assert.deepEqual([...new Set(found.map((f) => f.direction))], ['client→upstream']);
    assert.ok(found.every((f) => !f.seenByAgent));
  });

  const post = async (p: string, body: string) => {
    const a = gw.address('api');
    const res = await fetch(`http://${a.host}:${a.port}${p}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200);
    return res.text();
  };
  const httpFindings = async (p: string) => {
    const { s, c } = await recordedCommand(gw, (x) => x.kind === 'http' && x.text.startsWith(`POST ${p}`));
    return s.findings.filter((f) => f.commandId === c.id && f.kind === 'stripe-secret-key');
  };

  it('a key in an HTTP request body is client→upstream, not seen by the agent', async () => {
    await post('/upload', JSON.stringify({ stripe: STRIPE_POST }));
    const found = await httpFindings('/upload');
    assert.ok(found.length > 0, 'the planted key is found');
    assert.deepEqual([...new Set(found.map((f) => f.direction))], ['client→upstream']);
    assert.ok(found.every((f) => !f.seenByAgent));
  });

  it('a key the upstream echoes back is a finding both ways: sent, and seen by the agent', async () => {
    assert.ok((await post('/echo', JSON.stringify({ stripe: STRIPE_ECHO }))).includes(STRIPE_ECHO), 'the echo really carries it back');
    const found = await httpFindings('/echo');
    assert.deepEqual([...new Set(found.map((f) => f.direction))].sort(), ['client→upstream', 'upstream→client']);
    assert.ok(found.some((f) => f.seenByAgent));
  });

  it('no raw key reaches the data dir or the logs', async () => {
    await gw.flush();
    for (const k of [STRIPE, STRIPE_DOWN, STRIPE_POST, STRIPE_ECHO]) assert.deepEqual(gw.grepDataDir(k), [], k.slice(0, 12));
  });
});
