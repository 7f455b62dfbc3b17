/**
 * Masking is a security boundary: secrets planted in traffic through every listener that
 * exists (Postgres rows and bound parameters, HTTP request and response bodies, SSH output and
 * typed input) must be absent from the whole data dir, the gateway's log lines and an exported
 * bundle, while each sighting is reported as a finding with its direction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { startTestGateway, grepDir } from '../helpers/gateway';
import { startPostgres } from '../helpers/postgres-server';
import { startHttpUpstream } from '../helpers/http-upstreams';
import { registerSecret } from '../../gateway/masking-setup';
import { ensureFingerprintKey, ensureGatewayKey } from '../../gateway/store/chain';
import { exportBundle } from '../../gateway/bundle';
import { tempDir } from '../helpers/tmp';

// Built at run time so no secret-shaped literal sits in the repository.
const GHP = 'ghp_' + 'Zk3x9QeR7mT2vB8nL4cW1yH6pJ0sD5fA9uXo';
const AWS_ID = 'AKIA' + 'Q3EXAMPLEZ7K2M4P';
const STRIPE = 'sk_live_' + '51Hq8Zt2eXaMpLeKeY9vB3nM7cQ1wR5t';
const REGISTERED = 'Registered-Only-Value-' + 'b41c9e77f0';
const UPSTREAM_KEY = 'upstream-http-key-' + 'c0ffee4242beef';

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 30000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

test('planted secrets never reach the data dir, the logs or a bundle; each sighting is a finding', async () => {
  const pg = await startPostgres();
  const upstream = await startHttpUpstream();
  const dataDir = tempDir('flightlog-mask-e2e-');
  // Registered before the gateway starts, the way a user would: `flightlog secret add`.
  {
    const { openDb } = await import('../../gateway/store/db');
    const db = openDb(dataDir);
    registerSecret(db, 'vendor-key', REGISTERED, ensureFingerprintKey(dataDir));
    db.close();
  }
  const gw = await startTestGateway({
    dataDir,
    env: { APP_DB_PASSWORD: pg.app.password, HTTP_KEY: UPSTREAM_KEY },
    connections: [
      { name: 'app-db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude'] },
      { name: 'api', protocol: 'http', upstream: { url: upstream.url, headers: { 'x-api-key': { env: 'HTTP_KEY' } } }, identities: ['claude'] },
    ],
  });
  const bundleFile = path.join(os.tmpdir(), `flightlog-mask-e2e-${process.pid}.flightlog`);
  try {
    const token = gw.addIdentity('claude');
    const a = gw.address('app-db');

    // Postgres: secrets in a table's rows (seen by the agent) and in bound parameters (sent by it).
    const client = new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
    await client.connect();
    await client.query('CREATE TABLE vendors (id int, note text, api_token text)');
    await client.query('INSERT INTO vendors VALUES ($1, $2, $3)', [1, `deploy key ${AWS_ID}`, STRIPE]);
    await client.query(`INSERT INTO vendors VALUES (2, 'registered ${REGISTERED}', '${GHP}')`);
    const rows = await client.query('SELECT * FROM vendors ORDER BY id');
    assert.equal(rows.rows[0].api_token, STRIPE, 'mask: record leaves the traffic itself untouched');
    await client.end();

    // psql too: the same secrets printed in its table output.
    const psql = await sh('psql', ['-X', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', 'SELECT note, api_token FROM vendors'], { ...process.env, PGPASSWORD: token });
    assert.equal(psql.code, 0, psql.stderr);
    assert.ok(psql.stdout.includes(GHP));

    // HTTP: a secret in the request body, echoed back in the response body.
    const h = gw.address('api');
    const res = await fetch(`http://${h.host}:${h.port}/echo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'hunter2-http-' + 'plain-9931', github: GHP, note: REGISTERED }),
    });
    assert.equal(res.status, 200);
    const echoed = (await res.json()) as { body: string };
    assert.ok(echoed.body.includes(GHP));

    await gw.flush();
    const findings = gw.findings().filter((f) => f.category === 'secret');
    const kinds = new Set(findings.map((f) => f.kind));
    for (const k of ['github-pat', 'aws-access-key-id', 'stripe-secret-key', 'registered:vendor-key']) assert.ok(kinds.has(k), `a finding of kind ${k}: ${[...kinds].join(', ')}`);
    assert.ok(findings.some((f) => f.seenByAgent), 'some sightings travelled to the agent');
    assert.ok(findings.some((f) => !f.seenByAgent), 'some were sent by the agent');
    const ghpFps = new Set(findings.filter((f) => f.kind === 'github-pat').map((f) => f.fp));
    assert.equal(ghpFps.size, 1, 'the same secret has the same fingerprint across sessions and protocols');

    const sessions = gw.sessions().map((s) => s.id);
    await gw.close();
    const { openDb } = await import('../../gateway/store/db');
    const db = openDb(dataDir);
    await exportBundle(db, { sessionIds: sessions, out: bundleFile, key: ensureGatewayKey(dataDir) });
    db.close();

    for (const secret of [GHP, AWS_ID, STRIPE, REGISTERED, UPSTREAM_KEY, pg.app.password, token, 'hunter2-http-plain-9931']) {
      assert.deepEqual(gw.grepDataDir(secret), [], `${secret.slice(0, 6)}… is in no file of the data dir and no log line`);
      assert.equal(fs.readFileSync(bundleFile).includes(Buffer.from(secret)), false, `${secret.slice(0, 6)}… is not in the bundle`);
    }
    assert.deepEqual(grepDir(dataDir, GHP), []);
  } finally {
    await gw.close();
    await upstream.close();
    await pg.stop();
    fs.rmSync(bundleFile, { force: true });
  }
});
