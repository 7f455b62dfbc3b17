import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { commandShape, runTimeline, type RunCommandStep } from '../../gateway/store/runs';
import { tempRecorder } from '../helpers/recorder';

test('a command shape keeps kind and leading words, not literals, spacing or case', () => {
  assert.equal(commandShape('sql', 'ALTER TABLE orders ADD COLUMN x int NOT NULL'), commandShape('sql', "alter  table orders\n add column x int NOT NULL DEFAULT 0"));
  assert.equal(commandShape('sql', "UPDATE t SET a = 'x' WHERE id = 1"), commandShape('sql', "UPDATE t SET a = 'y' WHERE id = 2"));
  assert.notEqual(commandShape('sql', 'ALTER TABLE orders ADD x int'), commandShape('sql', 'ALTER TABLE users ADD x int'));
  assert.notEqual(commandShape('sql', 'SELECT 1'), commandShape('exec', 'SELECT 1'));
});

test('a failed command pairs with the next success of its shape later in the run, across sessions, and only then', async () => {
  const { dir, db, rec } = tempRecorder('flightlog-retry-');
  try {
    const s1 = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: 'run_r' });
    const bad = s1.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN s timestamptz NOT NULL' });
    bad.finish({ status: 'error', error: 'contains null values' });
    const otherFail = s1.startCommand({ kind: 'exec', text: 'npm test' });
    otherFail.finish({ status: 'error', error: 'exit 1' });
    s1.close();
    const s2 = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: 'run_r' });
    const unrelated = s2.startCommand({ kind: 'sql', text: 'ALTER TABLE users ADD COLUMN s int' });
    unrelated.finish({ status: 'ok' });
    const fixed = s2.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN s timestamptz NOT NULL DEFAULT now()' });
    fixed.finish({ status: 'ok' });
    const again = s2.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN s timestamptz' });
    again.finish({ status: 'ok' });
    s2.close();
    await rec.flush();
    const steps = new Map(runTimeline(db, 'run_r').steps.filter((s): s is RunCommandStep => s.type === 'command').map((s) => [s.commandId, s]));
    assert.equal(steps.get(bad.id)?.retriedBy, fixed.id);
    assert.equal(steps.get(fixed.id)?.retryOf, bad.id);
    assert.equal(steps.get(unrelated.id)?.retryOf, undefined, 'another table is another shape');
    assert.equal(steps.get(again.id)?.retryOf, undefined, 'a failure pairs once');
    assert.equal(steps.get(otherFail.id)?.retriedBy, undefined, 'never retried in the run');
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
