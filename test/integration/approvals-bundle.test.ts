/**
 * An approval decision is evidence like any other fact: a held psql DELETE approved with the CLI
 * and one denied leave `approval` events in the session's hash chain that `flightlog verify`
 * checks on the live store, and that an exported bundle carries and verifies. Real PostgreSQL
 * and psql through the real gateway.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { captureCli, waitForPending } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { listEvents } from '../../gateway/store/queries';
import type { PendingApproval } from '../../gateway/common/api-types';

let pg: PostgresServer;
let gw: TestGateway;
let token: string;
let work: string;

before(async () => {
  work = tempDir('flightlog-approvals-bundle-');
  pg = await startPostgres();
  gw = await startTestGateway({
    env: { APP_PW: pg.app.password },
    connections: [{ name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] }],
    guardrails: [{ name: 'hold-delete', match: { sql: { statement: ['delete'] } }, action: 'hold', reason: 'deleting rows needs a human' }],
  });
  token = gw.addIdentity('claude');
  pg.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3); ALTER TABLE t OWNER TO app;', 'app');
});

after(async () => {
  await gw?.close();
  if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
  await pg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function psql(sql: string): Promise<{ code: number; stderr: string }> {
  const a = gw.address('db');
  return new Promise((resolve) => {
    const child = execFile('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: token }, timeout: 60_000 }, (err, _out, stderr) => {
      resolve({ code: err ? 1 : 0, stderr: String(stderr) });
    });
    child.stdin?.end();
  });
}

const pendingFor = (text: RegExp): Promise<PendingApproval> => waitForPending(gw.dataDir, text);

test('approved and denied holds are events in the chain: the live store and an exported bundle verify, and a forged decision does not', async () => {
  const approved = psql('DELETE FROM t WHERE id = 1');
  const a = await pendingFor(/id = 1/);
  assert.equal((await captureCli(['approve', a.id, '--reason', 'checked', '--data-dir', gw.dataDir], { env: { ...process.env, USER: 'alice' } })).code, 0);
  assert.equal((await approved).code, 0);

  const denied = psql('DELETE FROM t WHERE id = 2');
  const d = await pendingFor(/id = 2/);
  assert.equal((await captureCli(['deny', d.id, '--reason', 'not today', '--data-dir', gw.dataDir], { env: { ...process.env, USER: 'bob' } })).code, 0);
  const r = await denied;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /denied by bob \(not today\)/);
  assert.equal(pg.psql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM t', 'app').trim(), '2,3');

  await gw.flush();
  const sessions = gw.sessions().filter((s) => s.connection === 'db');
  const events = sessions.flatMap((s) => listEvents(gw.gateway.db, s.id, { limit: 1000 }).events).filter((e) => e.kind === 'approval');
  const byDecision = Object.fromEntries(events.map((e) => [(e.data as Record<string, unknown>).decision as string, e.data as Record<string, unknown>]));
  assert.equal(byDecision.approve?.by, 'alice');
  assert.equal(byDecision.deny?.by, 'bob');
  assert.equal(byDecision.approve?.commandSha256, createHash('sha256').update(a.commandText).digest('hex'));

  // the live store verifies with the decisions in it
  const live = await captureCli(['verify', '--data-dir', gw.dataDir]);
  assert.equal(live.code, 0, live.stdout + live.stderr);

  // and so does a bundle of those sessions, carrying the approval events
  const file = path.join(work, 'approvals.flightlog');
  await exportBundle(gw.gateway.db, { sessionIds: sessions.map((s) => s.id), out: file, key: gw.gateway.key });
  const report = await verifyBundle(file, { trustedKeys: [] });
  assert.equal(report.ok, true, JSON.stringify(report).slice(0, 600));

  // a decision rewritten in the store (who approved) is caught by verify, naming the session
  const row = gw.gateway.db.prepare("SELECT session_id, seq, data FROM events WHERE kind = 'approval' AND data LIKE '%alice%'").get() as { session_id: string; seq: number; data: string };
  gw.gateway.db.prepare('UPDATE events SET data = ? WHERE session_id = ? AND seq = ?').run(row.data.replace('alice', 'mallory'), row.session_id, row.seq);
  const forged = await captureCli(['verify', '--data-dir', gw.dataDir]);
  assert.equal(forged.code, 1);
  assert.match(forged.stdout + forged.stderr, new RegExp(row.session_id));
});
