/**
 * Bundles of sessions recorded through the real listeners: OpenSSH's ssh client against a real
 * sshd (exec and a PTY shell) and curl against a Node HTTP upstream. Export with the CLI while the
 * gateway runs, verify, open, and compare with the live store; asciicast and HAR from the same data.
 */
import { captureCli, type CliResult } from '../helpers/cli';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { askpassEnv, clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { runExportCommand, runVerifyCommand } from '../../gateway/cli/bundle-commands';
import type { Io } from '../../gateway/cli/main';
import { openBundles } from '../../gateway/bundle/open';
import { getSession, listEvents } from '../../gateway/store/queries';
import type { SessionDetail } from '../../gateway/common/api-types';
import { filesContaining, tmpDir } from '../helpers/bundle-fixtures';
import { validateHar } from '../helpers/bundle-har-validator';

const REAL_KEY = 'sk-upstream-REAL-bundle-5b2d8f40c1e9';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cli = (fn: (argv: string[], io: Io) => Promise<number>, argv: string[]): Promise<CliResult> => captureCli(argv, { fn });

describe('bundles of sessions recorded through the listeners', { timeout: 120_000 }, () => {
  let sshd: Sshd | null = null;
  let upstream: HttpUpstream;
  let gw: TestGateway;
  let token: string;
  let work: string;

  before(async () => {
    work = tmpDir('flightlog-bundle-int-');
    upstream = await startHttpUpstream();
    // without OpenSSH's sshd on the machine the HTTP half still runs
    if (fs.existsSync('/usr/sbin/sshd')) sshd = await startSshd();
    const connections: unknown[] = [{ name: 'api', protocol: 'http', upstream: { url: upstream.url, headers: { 'x-api-key': { env: 'UP_KEY' } } }, identities: ['claude'] }];
    if (sshd) connections.push({ name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] });
    gw = await startTestGateway({ env: { UP_KEY: REAL_KEY }, connections });
    token = gw.addIdentity('claude');
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
    await sshd?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const closedSessions = async (n: number): Promise<SessionDetail[]> => {
    for (let i = 0; i < 100; i++) {
      await gw.flush();
      const s = gw.sessions().filter((x) => x.status !== 'live');
      if (s.length >= n) return s.map((x) => gw.show(x.id));
      await sleep(100);
    }
    throw new Error(`fewer than ${n} closed sessions: ${JSON.stringify(gw.sessions().map((s) => [s.connection, s.status]))}`);
  };

  it('records, exports while the gateway runs, verifies, opens identical to the live store, and leaks no secret', async () => {
    const a = gw.address('api');
    const curl = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-sS', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '--data', '{"q":"bundle-me"}', `http://${a.host}:${a.port}/echo?x=1`], (err, out) => (err ? reject(err) : resolve(out))),
    );
    assert.ok(curl.length > 0);
    let expected = 1;
    if (sshd) {
      const s = gw.address('web');
      const env = askpassEnv(work, token);
      const exec = await run('ssh', [...clientOptions(s.port), '-p', String(s.port), `claude@${s.host}`, 'echo hello-exec'], { env });
      assert.equal(exec.stdout, 'hello-exec\n', exec.stderr);
      const pty = await run('ssh', [...clientOptions(s.port), '-tt', '-p', String(s.port), `claude@${s.host}`], { env, input: 'echo hello-$((6*7))\nexit\n' });
      assert.match(pty.stdout, /hello-42/);
      expected += 2;
    }
    const sessions = await closedSessions(expected);
    const ids = sessions.map((s) => s.id);

    const file = path.join(work, 'review.flightlog');
    const ex = await cli(runExportCommand, [...ids, '-o', file, '--data-dir', gw.dataDir]);
    assert.equal(ex.code, 0, ex.stderr);
    const v = await cli(runVerifyCommand, [file, '--data-dir', gw.dataDir]);
    assert.equal(v.code, 0, v.stdout);
    assert.match(v.stdout, new RegExp(`^verified: ${expected} sessions?, \\d+ events, signed by SHA256:\\S+ \\(trusted: this gateway\\)\\n$`));

    const { db, reports } = await openBundles([file]);
    assert.equal(reports[0].ok, true);
    for (const id of ids) {
      const imported = getSession(db, id);
      const meta = { ...(imported.meta as Record<string, unknown>) };
      assert.equal((meta.bundle as { verified: boolean }).verified, true);
      delete meta.bundle;
      assert.deepEqual({ ...imported, meta }, gw.show(id));
      assert.deepEqual(listEvents(db, id, { limit: 10000 }), listEvents(gw.gateway.db, id, { limit: 10000 }));
    }
    db.close();

    const http = sessions.find((s) => s.protocol === 'http')!;
    const har = path.join(work, 'api.har');
    assert.equal((await cli(runExportCommand, [http.id, '-o', har, '--data-dir', gw.dataDir])).code, 0);
    const doc = JSON.parse(fs.readFileSync(har, 'utf8')) as { log: { entries: Array<{ request: { url: string; postData?: { text: string } } }> } };
    assert.deepEqual(validateHar(doc), []);
    assert.equal(doc.log.entries[0].request.url, `${upstream.url.replace(/\/$/, '')}/echo?x=1`);
    assert.match(doc.log.entries[0].request.postData?.text ?? '', /bundle-me/);

    if (sshd) {
      const shell = sessions.find((s) => s.protocol === 'ssh' && listEvents(gw.gateway.db, s.id, { limit: 10000 }).events.some((e) => e.kind === 'pty'))!;
      const cast = path.join(work, 'shell.cast');
      const r = await cli(runExportCommand, [shell.id, '-o', cast, '--data-dir', gw.dataDir]);
      assert.equal(r.code, 0, r.stderr);
      const rendered = execFileSync('script', ['-qec', `asciinema cat '${cast}'`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).toString();
      assert.match(rendered, /hello-42/);
    }

    for (const secret of [REAL_KEY, token]) assert.deepEqual(filesContaining(work, secret).filter((f) => !path.basename(f).startsWith('token-')), [], 'no secret in any export');
  });
});
