/**
 * A model-API fixture on 127.0.0.1 speaking the Anthropic Messages API and the OpenAI Chat
 * Completions and Responses APIs, streamed and not, with the event names and JSON shapes the
 * public API references document. Scripted: each call answers with some text and one tool call
 * (e.g. SQL to run). It refuses any key but the real one, as the real APIs do.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LlmScript {
  text: string;
  tool: { name: string; input: Record<string, unknown> };
  model?: string;
  /** how streamed replies cut the text into deltas (joined, they must equal `text`); default: by word */
  textDeltas?: string[];
  /** how streamed replies cut the tool's JSON arguments (joined, JSON.stringify(input)); default: three pieces */
  argDeltas?: string[];
}

function textDeltas(script: LlmScript): string[] {
  return script.textDeltas ?? words(script.text);
}

function argDeltas(script: LlmScript): string[] {
  return script.argDeltas ?? pieces(JSON.stringify(script.tool.input));
}

export interface SseFrame {
  event?: string;
  data: string;
}

/** Splits a JSON text into small pieces, as the APIs stream partial tool arguments. */
function pieces(s: string, n = 3): string[] {
  const out: string[] = [];
  const size = Math.max(1, Math.ceil(s.length / n));
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

function words(s: string): string[] {
  return s.split(/(?<= )/);
}

export function anthropicStream(script: LlmScript): SseFrame[] {
  const model = script.model ?? 'claude-sonnet-4-5';
  const ev = (type: string, body: Record<string, unknown>): SseFrame => ({ event: type, data: JSON.stringify({ type, ...body }) });
  return [
    ev('message_start', {
      message: {
        id: 'msg_01FixtureAnthropic', type: 'message', role: 'assistant', content: [], model,
        stop_reason: null, stop_sequence: null, usage: { input_tokens: 472, output_tokens: 2 },
      },
    }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    { event: 'ping', data: JSON.stringify({ type: 'ping' }) },
    ...textDeltas(script).map((t) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } })),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_01FixtureTool', name: script.tool.name, input: {} } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '' } }),
    ...argDeltas(script).map((p) => ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: p } })),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } }),
    ev('message_stop', {}),
  ];
}

export function anthropicMessage(script: LlmScript): unknown {
  return {
    id: 'msg_01FixtureAnthropic', type: 'message', role: 'assistant', model: script.model ?? 'claude-sonnet-4-5',
    content: [
      { type: 'text', text: script.text },
      { type: 'tool_use', id: 'toolu_01FixtureTool', name: script.tool.name, input: script.tool.input },
    ],
    stop_reason: 'tool_use', stop_sequence: null,
    usage: { input_tokens: 472, output_tokens: 89, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

export function chatStream(script: LlmScript): SseFrame[] {
  const base = { id: 'chatcmpl-Fixture123', object: 'chat.completion.chunk', created: 1694268190, model: script.model ?? 'gpt-4o-mini', system_fingerprint: 'fp_44709d6fcb' };
  const chunk = (delta: unknown, finish: string | null = null): SseFrame => ({
    data: JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }),
  });
  return [
    chunk({ role: 'assistant', content: '', refusal: null }),
    ...textDeltas(script).map((t) => chunk({ content: t })),
    chunk({ tool_calls: [{ index: 0, id: 'call_FixtureTool', type: 'function', function: { name: script.tool.name, arguments: '' } }] }),
    ...argDeltas(script).map((p) => chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] })),
    chunk({}, 'tool_calls'),
    { data: JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 } }) },
    { data: '[DONE]' },
  ];
}

export function chatCompletion(script: LlmScript): unknown {
  return {
    id: 'chatcmpl-Fixture123', object: 'chat.completion', created: 1694268190, model: script.model ?? 'gpt-4o-mini',
    choices: [{
      index: 0,
      message: {
        role: 'assistant', content: script.text, refusal: null,
        tool_calls: [{ id: 'call_FixtureTool', type: 'function', function: { name: script.tool.name, arguments: JSON.stringify(script.tool.input) } }],
      },
      logprobs: null, finish_reason: 'tool_calls',
    }],
    usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 },
  };
}

function responseObject(script: LlmScript, status: 'in_progress' | 'completed'): Record<string, unknown> {
  const done = status === 'completed';
  return {
    id: 'resp_Fixture123', object: 'response', created_at: 1741476542, status, model: script.model ?? 'gpt-4.1',
    output: done
      ? [
          { id: 'msg_Fixture', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: script.text, annotations: [] }] },
          { id: 'fc_Fixture', type: 'function_call', status: 'completed', call_id: 'call_FixtureTool', name: script.tool.name, arguments: JSON.stringify(script.tool.input) },
        ]
      : [],
    usage: done ? { input_tokens: 36, input_tokens_details: { cached_tokens: 0 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 123 } : null,
    incomplete_details: null, error: null,
  };
}

export function responsesStream(script: LlmScript): SseFrame[] {
  let seq = 0;
  const ev = (type: string, body: Record<string, unknown>): SseFrame => ({ event: type, data: JSON.stringify({ type, sequence_number: seq++, ...body }) });
  const args = JSON.stringify(script.tool.input);
  const msgItem = { id: 'msg_Fixture', type: 'message', status: 'in_progress', content: [], role: 'assistant' };
  const fcItem = { id: 'fc_Fixture', type: 'function_call', status: 'in_progress', call_id: 'call_FixtureTool', name: script.tool.name, arguments: '' };
  return [
    ev('response.created', { response: responseObject(script, 'in_progress') }),
    ev('response.in_progress', { response: responseObject(script, 'in_progress') }),
    ev('response.output_item.added', { output_index: 0, item: msgItem }),
    ev('response.content_part.added', { item_id: 'msg_Fixture', output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text: '' } }),
    ...textDeltas(script).map((d) => ev('response.output_text.delta', { item_id: 'msg_Fixture', output_index: 0, content_index: 0, delta: d })),
    ev('response.output_text.done', { item_id: 'msg_Fixture', output_index: 0, content_index: 0, text: script.text }),
    ev('response.content_part.done', { item_id: 'msg_Fixture', output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text: script.text } }),
    ev('response.output_item.done', { output_index: 0, item: { ...msgItem, status: 'completed', content: [{ type: 'output_text', annotations: [], text: script.text }] } }),
    ev('response.output_item.added', { output_index: 1, item: fcItem }),
    ...argDeltas(script).map((d) => ev('response.function_call_arguments.delta', { item_id: 'fc_Fixture', output_index: 1, delta: d })),
    ev('response.function_call_arguments.done', { item_id: 'fc_Fixture', output_index: 1, arguments: args }),
    ev('response.output_item.done', { output_index: 1, item: { ...fcItem, status: 'completed', arguments: args } }),
    ev('response.completed', { response: responseObject(script, 'completed') }),
  ];
}

export function responsesObject(script: LlmScript): unknown {
  return responseObject(script, 'completed');
}

export function sseText(frames: SseFrame[]): string {
  return frames.map((f) => `${f.event ? `event: ${f.event}\n` : ''}data: ${f.data}\n\n`).join('');
}

export interface LlmFixture {
  url: string;
  /** request bodies received, parsed */
  calls: { path: string; body: unknown; apiKeyOk: boolean }[];
  script: LlmScript;
  close(): Promise<void>;
}

/** Starts the fixture; only `apiKey` opens it (x-api-key for Anthropic, Bearer for OpenAI). */
export async function startLlmFixture(opts: { apiKey: string; script: LlmScript }): Promise<LlmFixture> {
  const calls: LlmFixture['calls'] = [];
  const fixture: LlmFixture = { url: '', calls, script: opts.script, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      const anthropic = path === '/v1/messages';
      const keyOk = anthropic ? req.headers['x-api-key'] === opts.apiKey : req.headers.authorization === `Bearer ${opts.apiKey}`;
      calls.push({ path, body, apiKeyOk: keyOk });
      const send = (status: number, v: unknown) => {
        const b = JSON.stringify(v);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
        res.end(b);
      };
      if (!keyOk) {
        if (anthropic) send(401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
        else send(401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
        return;
      }
      const stream = typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
      const script = fixture.script;
      let frames: SseFrame[] | null = null;
      let whole: unknown = null;
      const formats: Record<string, [(s: LlmScript) => SseFrame[], (s: LlmScript) => unknown]> = {
        '/v1/messages': [anthropicStream, anthropicMessage],
        '/v1/chat/completions': [chatStream, chatCompletion],
        '/v1/responses': [responsesStream, responsesObject],
      };
      const format = formats[path];
      if (format && stream) frames = format[0](script);
      else if (format) whole = format[1](script);
      else {
        send(404, { error: { message: 'not found', type: 'invalid_request_error' } });
        return;
      }
      if (!frames) {
        send(200, whole);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      for (const f of frames) {
        res.write(sseText([f]));
        await new Promise((r) => setImmediate(r));
      }
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fixture.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fixture.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return fixture;
}
