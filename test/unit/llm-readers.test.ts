import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnthropicStreamAssembler, anthropicReplyFromMessage, parseAnthropicRequest } from '../../gateway/http/llm-anthropic';
import {
  ChatStreamAssembler,
  ResponsesStreamAssembler,
  chatReplyFromCompletion,
  parseChatRequest,
  parseResponsesRequest,
  responsesReplyFromResponse,
} from '../../gateway/http/llm-openai';
import { ConversationTracker } from '../../gateway/http/llm-turns';
import { llmCommandText } from '../../gateway/http/llm-types';
import { detectLlmEndpoint } from '../../gateway/http/llm';
import { SseParser, type SseEvent } from '../../gateway/http/sse';
import {
  anthropicMessage,
  anthropicStream,
  chatCompletion,
  chatStream,
  responsesObject,
  responsesStream,
  sseText,
  type LlmScript,
} from '../helpers/llm-fixture';

const script: LlmScript = { text: 'I will drop the stale table.', tool: { name: 'run_sql', input: { sql: 'DROP TABLE stale_orders;' } } };

/** Feeds an SSE text through the real parser, split at awkward places, into an assembler. */
function feed(text: string, sink: { event(name: string, data: string): void }, step = 7): void {
  const p = new SseParser((e: SseEvent) => sink.event(e.event, e.data));
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += step) p.push(bytes.subarray(i, i + step));
  p.end();
}

// Verbatim from Anthropic's "Streaming Messages" reference (streaming request with tool use).
const ANTHROPIC_DOC_STREAM = `event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" let"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'s"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"unit\\": \\"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

`;

test('anthropic: the documented tool-use stream reassembles into text, tool call, usage, stop reason', () => {
  const a = new AnthropicStreamAssembler();
  feed(ANTHROPIC_DOC_STREAM, a);
  const r = a.result();
  assert.equal(r.model, 'claude-opus-4-1-20250805');
  assert.equal(r.assistantText, "Okay, let's check the weather for San Francisco, CA:");
  assert.equal(r.toolCalls.length, 1);
  assert.equal(r.toolCalls[0].id, 'toolu_01T1x1fJ34qAmk2tNTrN7Up6');
  assert.equal(r.toolCalls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { location: 'San Francisco, CA', unit: 'fahrenheit' });
  assert.equal(r.stopReason, 'tool_use');
  assert.deepEqual(r.usage, { input_tokens: 472, output_tokens: 89 });
});

test('anthropic: stream and whole message give the same reply; CRLF framing works', () => {
  const a = new AnthropicStreamAssembler();
  feed(sseText(anthropicStream(script)).replace(/\n/g, '\r\n'), a, 5);
  const s = a.result();
  const w = anthropicReplyFromMessage(anthropicMessage(script));
  assert.equal(s.assistantText, script.text);
  assert.equal(w.assistantText, script.text);
  assert.deepEqual(JSON.parse(s.toolCalls[0].arguments), script.tool.input);
  assert.deepEqual(JSON.parse(w.toolCalls[0].arguments), script.tool.input);
  assert.equal(s.stopReason, w.stopReason);
});

test('anthropic: an in-stream error event is kept', () => {
  const a = new AnthropicStreamAssembler();
  feed('event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n', a);
  assert.deepEqual(a.result().error, { type: 'overloaded_error', message: 'Overloaded' });
});

test('anthropic request: system first, cache markers and image bytes dropped', () => {
  const info = parseAnthropicRequest({
    model: 'claude-sonnet-4-5',
    stream: true,
    system: [{ type: 'text', text: 'You are careful.', cache_control: { type: 'ephemeral' } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Clean up the db' }, { type: 'image', source: { type: 'base64', data: 'AAAA' } }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'run_sql', input: { sql: 'SELECT 1' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: '1 row' }] },
    ],
  });
  assert.equal(info.model, 'claude-sonnet-4-5');
  assert.equal(info.stream, true);
  assert.equal(info.turns.length, 4);
  assert.deepEqual(info.turns[0], { role: 'system', content: [{ type: 'text', text: 'You are careful.' }] });
  assert.deepEqual(info.turns[1].content, [{ type: 'text', text: 'Clean up the db' }, { type: 'image' }]);
  assert.equal(llmCommandText(info.model, info.turns), 'claude-sonnet-4-5: Clean up the db (+ tool results)');
});

test('openai chat: streamed chunks (delta.content, delta.tool_calls, usage chunk, [DONE]) reassemble', () => {
  const a = new ChatStreamAssembler();
  feed(sseText(chatStream(script)), a, 11);
  const r = a.result();
  assert.equal(r.model, 'gpt-4o-mini');
  assert.equal(r.assistantText, script.text);
  assert.deepEqual(r.toolCalls.map((c) => [c.id, c.name]), [['call_FixtureTool', 'run_sql']]);
  assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), script.tool.input);
  assert.equal(r.stopReason, 'tool_calls');
  assert.deepEqual(r.usage, { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 });
  assert.deepEqual(chatReplyFromCompletion(chatCompletion(script)).toolCalls, r.toolCalls);
});

test('openai chat: two parallel tool calls by index', () => {
  const a = new ChatStreamAssembler();
  const c = (tc: unknown) => JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { tool_calls: [tc] }, finish_reason: null }] });
  a.event('message', c({ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '' } }));
  a.event('message', c({ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{"y":' } }));
  a.event('message', c({ index: 0, function: { arguments: '{"x":1}' } }));
  a.event('message', c({ index: 1, function: { arguments: '2}' } }));
  assert.deepEqual(a.result().toolCalls, [
    { id: 'a', name: 'f', arguments: '{"x":1}' },
    { id: 'b', name: 'g', arguments: '{"y":2}' },
  ]);
});

test('openai responses: typed events reassemble; whole response agrees', () => {
  const a = new ResponsesStreamAssembler();
  feed(sseText(responsesStream(script)), a, 13);
  const r = a.result();
  assert.equal(r.id, 'resp_Fixture123');
  assert.equal(r.assistantText, script.text);
  assert.deepEqual(r.toolCalls, [{ id: 'call_FixtureTool', name: 'run_sql', arguments: JSON.stringify(script.tool.input) }]);
  assert.equal(r.stopReason, 'completed');
  assert.equal((r.usage as { total_tokens: number }).total_tokens, 123);
  const w = responsesReplyFromResponse(responsesObject(script));
  assert.equal(w.assistantText, r.assistantText);
  assert.deepEqual(w.toolCalls, r.toolCalls);
});

test('openai requests: chat messages and responses input items become turns', () => {
  const chat = parseChatRequest({
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'sys' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:...' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'sh', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'ok' },
    ],
  });
  assert.equal(chat.turns.length, 4);
  assert.deepEqual(chat.turns[1].content, [{ type: 'text', text: 'hi' }, { type: 'image_url' }]);
  assert.equal(chat.turns[3].tool_call_id, 'c1');
  const resp = parseResponsesRequest({
    model: 'gpt-4.1',
    instructions: 'be brief',
    previous_response_id: 'resp_1',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'list tables' }] },
      { type: 'function_call_output', call_id: 'c9', output: '3 tables' },
    ],
  });
  assert.equal(resp.continues, true);
  assert.deepEqual(resp.turns.map((t) => t.role), ['system', 'user', 'tool']);
  assert.equal(llmCommandText(resp.model, resp.turns), 'gpt-4.1: list tables (+ tool results)');
});

test('new turns: only what was added since the closest earlier call, assistant echo skipped', () => {
  const t = new ConversationTracker();
  const sys = { role: 'system', content: 'S' };
  const u1 = { role: 'user', content: 'one' };
  const a1 = { role: 'assistant', content: 'reply one' };
  const u2 = { role: 'user', content: 'two' };
  assert.deepEqual(t.newTurns([sys, u1]), [sys, u1]);
  assert.deepEqual(t.newTurns([sys, u1, a1, u2]), [u2]);
  // a sub-agent's separate conversation interleaves without confusing the first
  const x = { role: 'user', content: 'sub-task' };
  assert.deepEqual(t.newTurns([{ role: 'system', content: 'Sub' }, x]), [{ role: 'system', content: 'Sub' }, x]);
  const u3 = { role: 'user', content: 'three' };
  assert.deepEqual(t.newTurns([sys, u1, a1, u2, { role: 'assistant', content: 'r2' }, u3]), [u3]);
});

test('endpoint detection by dialect and path suffix', () => {
  assert.equal(detectLlmEndpoint('anthropic', 'POST', '/v1/messages'), 'anthropic-messages');
  assert.equal(detectLlmEndpoint('anthropic', 'POST', '/v1/messages/count_tokens'), null);
  assert.equal(detectLlmEndpoint('anthropic', 'GET', '/v1/messages'), null);
  assert.equal(detectLlmEndpoint('openai', 'POST', '/v1/chat/completions'), 'openai-chat');
  assert.equal(detectLlmEndpoint('openai', 'POST', '/chat/completions'), 'openai-chat');
  assert.equal(detectLlmEndpoint('openai', 'POST', '/v1/responses'), 'openai-responses');
  assert.equal(detectLlmEndpoint('openai', 'POST', '/v1/models'), null);
});
