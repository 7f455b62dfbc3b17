/**
 * Lineage into MCP: a model's tool call whose name and arguments match an MCP tools/call in the
 * same run links to it, whatever prefix the agent gives MCP tool names, and with secrets in the
 * arguments masked the same way on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lineage } from '../../gateway/lineage';
import { getCommand } from '../../gateway/store/queries';
import { matchesCommand, mcpCandidate } from '../../gateway/http/lineage';
import { toolCallOfText, toolCallText } from '../../gateway/mcp/session';
import { tempRecorder } from '../helpers/recorder';

test('an MCP candidate matches the tools/call it asked for, bare or namespaced, with arguments in any order', () => {
  const down = toolCallText('files', 'read_file', { path: '/srv/a', lines: 3 });
  for (const name of ['read_file', 'mcp__files__read_file', 'files_read_file', 'files.read_file', 'files-read_file']) {
    const c = mcpCandidate({ name, arguments: '{ "lines": 3, "path": "/srv/a" }' });
    assert.ok(c && matchesCommand(c, down), name);
  }
  assert.ok(!matchesCommand(mcpCandidate({ name: 'read_file', arguments: '{"path":"/srv/b","lines":3}' })!, down), 'other arguments');
  assert.ok(!matchesCommand(mcpCandidate({ name: 'xread_file', arguments: '{"path":"/srv/a","lines":3}' })!, down), 'another tool whose name ends the same');
  assert.ok(matchesCommand(mcpCandidate({ name: 'query', arguments: '{"sql":"select 1"}' })!, toolCallText('db.prod', 'query', { sql: 'select 1' })), 'a connection name with a dot');
  assert.equal(mcpCandidate({ name: 'x', arguments: 'not json' }), null);
});

test('a model tool call links to the MCP command of the same run; another run is not linked', async () => {
  const lineage = new Lineage();
  const { db, rec } = tempRecorder('flightlog-mcp-lineage-', { lineage });
  try {
    const token = 'ghp_' + 'Zk3x9QeR7mT2vB8nL4cW1yH6pJ0sD5fA9uXo';
    const model = rec.openSession({ connection: 'model', protocol: 'http', identity: 'claude', runId: 'run_1' });
    const llm = model.startCommand({ kind: 'llm', text: 'claude: open the issue' });
    llm.finish({ status: 'ok', result: { toolCalls: [{ id: 'toolu_1', name: 'mcp__github__create_issue', arguments: JSON.stringify({ title: 'Bug', auth: token }) }] } });
    const mcp = rec.openSession({ connection: 'github', protocol: 'mcp', identity: 'claude', runId: 'run_1' });
    const call = mcp.startCommand({ kind: 'mcp', text: toolCallText('github', 'create_issue', { auth: token, title: 'Bug' }) });
    call.finish({ status: 'ok' });
    const other = rec.openSession({ connection: 'github', protocol: 'mcp', identity: 'claude', runId: 'run_2' });
    const otherCall = other.startCommand({ kind: 'mcp', text: toolCallText('github', 'create_issue', { auth: token, title: 'Bug' }) });
    otherCall.finish({ status: 'ok' });
    await rec.flush();
    assert.equal(getCommand(db, call.id)?.causedBy, llm.id);
    assert.equal(getCommand(db, otherCall.id)?.causedBy, null);
    assert.doesNotMatch(getCommand(db, call.id)!.text, /ghp_Zk3x/);
  } finally {
    db.close();
  }
});

test('a recorded tool call text reads back as the tool and its arguments (policy test over history)', () => {
  assert.deepEqual(toolCallOfText('db.prod', toolCallText('db.prod', 'query', { sql: 'drop table x' })), { server: ['db.prod'], tool: 'query', arguments: { sql: 'drop table x' }, changed: false });
  assert.equal(toolCallOfText('files', 'files resources/read file:///a'), undefined);
  assert.equal(toolCallOfText('files', 'files.write_file {"path":"/a","content":"xx…'), undefined);
});
