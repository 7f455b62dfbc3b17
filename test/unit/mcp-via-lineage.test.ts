/**
 * Which MCP call a command in a `via` session is linked to: the one in flight in that MCP session,
 * the newest when several are, the last one started when none is; another MCP session's calls and
 * sessions without `via` never take part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Lineage } from '../../gateway/lineage';
import { getCommand } from '../../gateway/store/queries';
import { tempRecorder } from '../helpers/recorder';

test('a via session links each command to the MCP call in flight in its own MCP session', async () => {
  const lineage = new Lineage();
  const { dir, db, rec } = tempRecorder('flightlog-via-lineage-', { lineage });
  try {
    const who = { identity: 'claude', runId: 'run_1' };
    const mcpA = rec.openSession({ connection: 'db', protocol: 'mcp', ...who });
    const mcpB = rec.openSession({ connection: 'db', protocol: 'mcp', ...who });
    const viaA = rec.openSession({ connection: 'app-db', protocol: 'postgres', ...who });
    lineage.bindVia(viaA.id, mcpA.id);
    const own = rec.openSession({ connection: 'app-db', protocol: 'postgres', ...who });

    const zero = viaA.startCommand({ kind: 'sql', text: 'SELECT 0' });
    const first = mcpA.startCommand({ kind: 'mcp', text: 'db.query {"sql":"SELECT 1"}' });
    const other = mcpB.startCommand({ kind: 'mcp', text: 'db.query {"sql":"SELECT 9"}' });
    const one = viaA.startCommand({ kind: 'sql', text: 'SELECT 1' });
    const second = mcpA.startCommand({ kind: 'mcp', text: 'db.query {"sql":"SELECT 2"}' });
    const two = viaA.startCommand({ kind: 'sql', text: 'SELECT 2' });
    second.finish({ status: 'ok', result: {} });
    const three = viaA.startCommand({ kind: 'sql', text: 'SELECT 3' });
    first.finish({ status: 'ok', result: {} });
    other.finish({ status: 'ok', result: {} });
    const late = viaA.startCommand({ kind: 'sql', text: 'SELECT 4' });
    const mine = own.startCommand({ kind: 'sql', text: 'SELECT 1' });
    for (const c of [zero, one, two, three, late, mine]) c.finish({ status: 'ok', result: {} });
    await rec.flush();
    const causedBy = (c: { id: number }) => getCommand(db, c.id)?.causedBy ?? null;
    assert.equal(causedBy(zero), null, 'no MCP call yet: no link');

    assert.equal(causedBy(one), first.id, 'the one call in flight in its MCP session (not the other session\'s)');
    assert.equal(causedBy(two), second.id, 'two in flight: the newest');
    assert.equal(causedBy(three), first.id, 'the one still in flight');
    assert.equal(causedBy(late), second.id, 'none in flight: the last one started');
    assert.equal(causedBy(mine), null, 'a session without via is not linked to MCP calls');
    for (const s of [mcpA, mcpB, viaA, own]) s.close('closed', 'done');
    await rec.flush();
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
