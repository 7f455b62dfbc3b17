import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lineage } from '../../gateway/lineage';
import { getCommand, getSession } from '../../gateway/store/queries';
import { tempRecorder } from '../helpers/recorder';

test('a tool call is linked to the downstream command it caused, both ways, within its run only', async () => {
  const lineage = new Lineage();
  const { db, rec } = tempRecorder('flightlog-lineage-', { lineage });
  const model = rec.openSession({ connection: 'model', protocol: 'http', identity: 'claude', runId: 'run_1' });
  const llm = model.startCommand({ kind: 'llm', text: 'claude-sonnet: clean up the old table' });
  llm.finish({
    status: 'ok',
    result: { model: 'claude-sonnet', toolCalls: [{ id: 'toolu_1', name: 'run_sql', arguments: JSON.stringify({ sql: 'DROP TABLE old_orders' }) }] },
  });
  // The SQL arrives on the postgres connection, in the same run, with different spacing.
  const pg = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: 'run_1' });
  const before = pg.startCommand({ kind: 'sql', text: 'SELECT 1' });
  before.finish({ status: 'ok' });
  const drop = pg.startCommand({ kind: 'sql', text: 'drop  table old_orders;' });
  drop.finish({ status: 'ok' });
  // Another run's identical statement is not linked.
  const other = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: 'run_2' });
  const otherDrop = other.startCommand({ kind: 'sql', text: 'DROP TABLE old_orders' });
  otherDrop.finish({ status: 'ok' });
  await rec.flush();
  assert.equal(getCommand(db, drop.id)?.causedBy, llm.id, 'from DROP TABLE back to the model call');
  assert.equal(getCommand(db, before.id)?.causedBy, null);
  assert.equal(getCommand(db, otherDrop.id)?.causedBy, null);
  const m = getSession(db, model.id);
  assert.deepEqual(m.commands[0].caused, [drop.id], 'from the prompt forward to what it caused');
});
