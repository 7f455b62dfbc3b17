/** The approvals registry on its own: ids, who decided, timeouts, cancellation, 404 vs 409. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApprovalRegistry, deniedMessage, sha256, type ApprovalChange } from '../../gateway/approvals';

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

  it('tells the agent who denied it', () => {
    assert.equal(deniedMessage('r', { decision: 'deny', by: 'bob', reason: 'no' }), 'flightlog: blocked by guardrail "r": denied by bob (no)');
    assert.equal(deniedMessage('r', { decision: 'deny', by: 'timeout', reason: null }), 'flightlog: blocked by guardrail "r": timed out waiting for approval');
  });
});
