/**
 * Which cipher the agent's OpenSSH client ends up with on its leg to the gateway. OpenSSH lists
 * chacha20-poly1305 first; ssh2 without its native addon runs that in WebAssembly, the
 * dearest cipher it has, so the gateway must not offer it then (docs/benchmarks.md, "SSH cost").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AGENT_LEG_CIPHERS } from '../../gateway/ssh/algorithms';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';

/** The cipher `ssh -v` reports for server→client, e.g. `aes128-ctr`. */
function negotiated(stderr: string): string | null {
  return /kex: server->client cipher: (\S+)/.exec(stderr)?.[1] ?? null;
}

describe('ssh ciphers on the agent leg', { timeout: 60_000 }, () => {
  let sshd: Sshd;
  let gw: TestGateway;
  let agentKey: string;
  let work: string;

  before(async () => {
    work = tempDir('flightlog-ssh-ciphers-');
    sshd = await startSshd();
    gw = await startTestGateway({
      connections: [{ name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] }],
    });
    gw.addIdentity('claude');
    agentKey = path.join(work, 'agent');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', agentKey]);
    gw.addKey('claude', `${agentKey}.pub`);
  });

  after(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  const ssh = (extra: string[]) => {
    const a = gw.address('web');
    return run('ssh', [...clientOptions(a.port, { keyPath: agentKey }), '-v', ...extra, '-p', String(a.port), `claude@${a.host}`, 'echo ok'], { timeoutMs: 30_000 });
  };

  it("a default OpenSSH client gets the gateway's cheapest cipher, not chacha20 in WebAssembly", async () => {
    const r = await ssh([]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
    const cipher = negotiated(r.stderr);
    assert.ok(cipher && AGENT_LEG_CIPHERS.includes(cipher as (typeof AGENT_LEG_CIPHERS)[number]), `negotiated ${cipher}`);
    if (!AGENT_LEG_CIPHERS.includes('chacha20-poly1305@openssh.com')) assert.equal(cipher, 'aes128-ctr');
  });

  it('a client that asks for AES-GCM gets it', async () => {
    const r = await ssh(['-c', 'aes256-gcm@openssh.com']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(negotiated(r.stderr), 'aes256-gcm@openssh.com');
  });
});
