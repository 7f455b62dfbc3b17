/** The approvals registry on its own: ids, who decided, timeouts, cancellation, 404 vs 409. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApprovalRegistry, deniedMessage, sha256, type ApprovalChange, type ApprovalDetails } from '../../gateway/approvals';
import * as net from 'node:net';
import { explainEstimate, summarizePlan } from '../../gateway/postgres/explain';

const req = (commandText: string, timeoutSeconds?: number) => ({
  sessionId: 's1', connection: 'db', protocol: 'postgres' as const, identity: 'claude', runId: null,
  commandText, rule: 'hold-delete', reason: null, rulesVersion: 'v1', timeoutSeconds,
});

describe('approval registry', () => {
  it('lists a hold until a human decides, bound to the command text', async () => {
    const r = new ApprovalRegistry();
    const changes: ApprovalChange[] = [];
    r.subscribe((c) => changes.push(c));
    const h = r.request(req('DELETE FROM t'));
    assert.match(h.approval.id, /^apr_[a-z2-7]{10}$/);
    assert.equal(h.approval.commandSha256, sha256('DELETE FROM t'));
    assert.equal(Date.parse(h.approval.expiresAt) - Date.parse(h.approval.createdAt), 300_000, 'the default timeout is 300 s');
    assert.deepEqual(r.list().map((a) => a.id), [h.approval.id]);
    assert.equal(r.decide(h.approval.id, 'approve', 'alice', 'fine'), 'ok');
    assert.deepEqual(await h.outcome, { decision: 'approve', by: 'alice', reason: 'fine' });
    assert.deepEqual(r.list(), []);
    assert.equal(r.decide(h.approval.id, 'deny', 'bob', null), 'decided');
    assert.equal(r.decide('apr_zzzzzzzzzz', 'deny', 'bob', null), 'unknown');
    assert.deepEqual(changes.map((c) => c.state), ['pending', 'decided']);
  });

  it('the rule\'s timeout denies by itself; a cancelled hold is denied and gone', async () => {
    const r = new ApprovalRegistry();
    const t = r.request(req('UPDATE t SET x = 1', 0.05));
    // the registry's timers do not keep a process alive; this test's process must stay up for one
    const alive = setInterval(() => undefined, 1000);
    const outcome = await t.outcome.finally(() => clearInterval(alive));
    assert.deepEqual(outcome, { decision: 'deny', by: 'timeout', reason: 'no decision within 0.05s' });
    const c = r.request(req('DELETE FROM u'));
    c.cancel();
    assert.equal((await c.outcome).by, 'cancelled');
    assert.deepEqual(r.list(), []);
  });

  it('a hold with details is listed and announced once, complete', async () => {
    const r = new ApprovalRegistry();
    const changes: ApprovalChange[] = [];
    r.subscribe((c) => changes.push(c));
    let give!: (d: ApprovalDetails) => void;
    const h = r.request({ ...req('DELETE FROM t'), tables: ['t'], details: () => new Promise<ApprovalDetails>((res) => (give = res)) });
    assert.deepEqual(r.list(), [], 'not listed before its estimate is known');
    give({ estimate: { rows: 7, node: 'Delete (Seq Scan)' } });
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(r.list().map((a) => [a.id, a.tables, a.estimate]), [[h.approval.id, ['t'], { rows: 7, node: 'Delete (Seq Scan)' }]]);
    assert.deepEqual(changes.map((c) => c.state), ['pending']);
    h.cancel();
  });

  it('approve for the run: the same rule in the same run passes by itself until the run ends', async () => {
    let active = true;
    const r = new ApprovalRegistry({ runActive: () => active });
    const inRun = { ...req('DELETE FROM t'), runId: 'run_1' };
    assert.equal(r.decide(r.request(req('DELETE FROM t')).approval.id, 'approve', 'alice', null, 'run'), 'no-run', 'a hold outside a run cannot be approved for one');
    const first = r.request(inRun);
    const waiting = r.request({ ...inRun, commandText: 'DELETE FROM u' });
    const otherRule = r.request({ ...inRun, rule: 'hold-update' });
    assert.equal(r.decide(first.approval.id, 'approve', 'alice', null, 'run'), 'ok');
    assert.deepEqual(await waiting.outcome, { decision: 'approve', by: 'alice (for the run)', reason: null }, 'one already waiting goes on too');
    let explained = false;
    const later = r.request({ ...inRun, commandText: 'DELETE FROM v', details: () => ((explained = true), Promise.resolve({ estimate: null })) });
    assert.equal((await later.outcome).by, 'alice (for the run)');
    assert.equal(explained, false, 'no EXPLAIN for a hold nobody is asked about');
    assert.equal(r.decide(later.approval.id, 'deny', 'bob', null), 'decided');
    r.request({ ...inRun, runId: 'run_2' });
    assert.ok(r.list().some((a) => a.runId === 'run_2'), 'another run still asks');
    assert.ok(r.list().some((a) => a.id === otherRule.approval.id), 'another rule still asks');
    active = false;
    r.request({ ...inRun, commandText: 'DELETE FROM w' });
    assert.ok(r.list().some((a) => a.commandText === 'DELETE FROM w'), 'after the run ended it asks again');
    r.cancelAll();
  });

  it('the plan summary: a DELETE reports the rows its scan feeds, a SELECT its top node', () => {
    const del = JSON.stringify([{ Plan: { 'Node Type': 'ModifyTable', Operation: 'Delete', 'Plan Rows': 0, Plans: [{ 'Node Type': 'Seq Scan', 'Plan Rows': 40000 }] } }]);
    assert.deepEqual(summarizePlan(del), { rows: 40000, node: 'Delete (Seq Scan)' });
    assert.deepEqual(summarizePlan(JSON.stringify([{ Plan: { 'Node Type': 'Index Scan', 'Plan Rows': 1 } }])), { rows: 1, node: 'Index Scan' });
    assert.equal(summarizePlan('[{}]'), null);
  });

  it('EXPLAIN is time-boxed: an upstream that never answers gives no estimate and says why', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const d = await explainEstimate({ host: '127.0.0.1', port, user: 'app', tls: 'disable' }, 'pw', 'app', 'DELETE FROM t', { timeoutMs: 200 });
      assert.deepEqual(d, { estimate: null, estimateError: 'EXPLAIN took longer than 0.2s' });
    } finally {
      // as PostgreSQL's authentication_timeout would: the login still waiting then fails quietly
      for (const s of sockets) s.destroy();
      await new Promise((res) => server.close(res));
    }
  });

  it('tells the agent who denied it', () => {
    assert.equal(deniedMessage('r', { decision: 'deny', by: 'bob', reason: 'no' }), 'flightlog: blocked by guardrail "r": denied by bob (no)');
    assert.equal(deniedMessage('r', { decision: 'deny', by: 'timeout', reason: null }), 'flightlog: blocked by guardrail "r": timed out waiting for approval');
  });
});
