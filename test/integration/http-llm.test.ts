import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';
import { extractCommandCandidates, matchesCommand, toolCallsOf } from '../../gateway/http/lineage';
import { listEvents } from '../../gateway/store/queries';
import type { CommandView } from '../../gateway/common/api-types';

const REAL_KEY = 'sk-ant-REAL-api03-9c1e5b2d8f40aa77';
const SQL = 'DROP TABLE stale_orders;';
let gw: TestGateway;
let fx: LlmFixture;
let token: string;

function url(name: string, path: string): string {
  const a = gw.address(name);
  return `http://${a.host}:${a.port}${path}`;
}

async function llmCommands(): Promise<CommandView[]> {
  await gw.flush();
  return gw
    .sessions()
    .flatMap((s) => gw.show(s.id).commands)
    .filter((c) => c.kind === 'llm')
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id - b.id);
}

before(async () => {
  fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Dropping the stale table now.', tool: { name: 'run_sql', input: { sql: SQL } } } });
  gw = await startTestGateway({
    env: { MODEL_KEY: REAL_KEY },
    connections: [
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' }, 'anthropic-version': '2023-06-01' } }, identities: ['claude'] },
      { name: 'openai', protocol: 'http', llm: 'openai', upstream: { url: `${fx.url}/v1`, bearer: { env: 'MODEL_KEY' } }, identities: ['claude'] },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await fx?.close();
});

const system = 'You are a careful database agent.';
const u1 = { role: 'user', content: 'Clean up the stale orders table' };

test('anthropic streamed call: a command of kind llm with the tool call reassembled from the stream', async () => {
  const res = await fetch(url('model', '/v1/messages'), {
    method: 'POST',
    headers: { 'x-api-key': token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-flightlog-run': 'run-llm' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1024, stream: true, system, messages: [u1] }),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /event: message_stop/);
  assert.equal(fx.calls.at(-1)!.apiKeyOk, true, 'fixture must receive the real key');
  const [c] = await llmCommands();
  assert.equal(c.text, 'claude-sonnet-4-5: Clean up the stale orders table');
  const r = c.result as Record<string, any>;
  assert.equal(r.assistantText, 'Dropping the stale table now.');
  assert.deepEqual(r.toolCalls.map((t: any) => t.name), ['run_sql']);
  assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { sql: SQL });
  assert.equal(r.stopReason, 'tool_use');
  assert.deepEqual(r.usage, { input_tokens: 472, output_tokens: 89 });
  assert.deepEqual(r.newTurns.map((t: any) => t.role), ['system', 'user']);
  const s = gw.sessions().find((x) => x.run === 'run-llm')!;
  const sse = listEvents(gw.gateway.db, s.id, { limit: 500 }).events.filter((e) => e.kind === 'sse');
  assert.ok(sse.some((e) => (e.data as any).event === 'content_block_delta'));
  // the lead's lineage wiring: the tool call names the SQL the database will see
  const cands = toolCallsOf(c.result ?? null).flatMap(extractCommandCandidates);
  assert.ok(cands.some((k) => k.kind === 'sql' && matchesCommand(k, 'drop table stale_orders')));
});

test('anthropic follow-up (not streamed): only the tool result is new', async () => {
  const res = await fetch(url('model', '/v1/messages'), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-flightlog-run': 'run-llm' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 1024,
      system,
      messages: [
        u1,
        { role: 'assistant', content: [{ type: 'text', text: 'Dropping the stale table now.' }, { type: 'tool_use', id: 'toolu_01FixtureTool', name: 'run_sql', input: { sql: SQL } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01FixtureTool', content: 'DROP TABLE' }] },
      ],
    }),
  });
  const body = await res.json();
  assert.equal(body.type, 'message');
  const cs = await llmCommands();
  const r = cs.at(-1)!.result as Record<string, any>;
  assert.equal(r.stream, false);
  assert.deepEqual(r.newTurns, [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01FixtureTool', content: 'DROP TABLE' }] }]);
  assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { sql: SQL });
});

test('openai chat completions (streamed) and responses (streamed and not)', async () => {
  const chat = await fetch(url('openai', '/chat/completions'), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'list the tables' }] }),
  });
  assert.match(await chat.text(), /data: \[DONE\]/);
  for (const stream of [true, false]) {
    const r = await fetch(url('openai', '/responses'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4.1', stream, instructions: 'be brief', input: 'drop the stale table' }),
    });
    await r.text();
  }
  assert.ok(fx.calls.slice(-3).every((c) => c.apiKeyOk));
  const cs = (await llmCommands()).filter((c) => c.text.startsWith('gpt-'));
  assert.equal(cs.length, 3);
  const [chatCmd, streamed, whole] = cs.map((c) => c.result as Record<string, any>);
  assert.equal(chatCmd.endpoint, 'openai-chat');
  assert.deepEqual(JSON.parse(chatCmd.toolCalls[0].arguments), { sql: SQL });
  assert.equal(chatCmd.usage.total_tokens, 99);
  assert.equal(streamed.endpoint, 'openai-responses');
  assert.equal(streamed.assistantText, 'Dropping the stale table now.');
  assert.deepEqual(streamed.toolCalls, whole.toolCalls);
  assert.equal(cs[1].text, 'gpt-4.1: drop the stale table');
});

test('the real model key never reaches the client or the store', async () => {
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(REAL_KEY), []);
  assert.deepEqual(gw.grepDataDir(token), []);
});
