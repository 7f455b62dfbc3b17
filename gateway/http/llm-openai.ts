/**
 * OpenAI Chat Completions (POST /v1/chat/completions) and Responses (POST /v1/responses):
 * the prompt turns of a request, and the reply, whole or reassembled from the stream
 * (chat: `data:` chunks with choices[].delta.content / delta.tool_calls, then `data: [DONE]`;
 * Responses: typed events response.output_text.delta, response.function_call_arguments.delta,
 * response.output_item.added/done, response.completed …). Pure: no Node imports.
 */
import type { Json } from '../common/types';
import {
  asJson,
  emptyReply,
  isRecord,
  parseJson,
  str,
  type LlmReply,
  type LlmRequestInfo,
  type LlmStreamAssembler,
  type LlmToolCall,
  type LlmTurn,
} from './llm-types';

function simplifyPart(p: unknown): Json {
  if (typeof p === 'string') return { type: 'text', text: p };
  if (!isRecord(p)) return null;
  const type = str(p.type) ?? 'unknown';
  if ((type === 'text' || type === 'input_text' || type === 'output_text' || type === 'refusal') && typeof (p.text ?? p.refusal) === 'string') {
    return { type: type === 'refusal' ? 'refusal' : 'text', text: String(p.text ?? p.refusal) };
  }
  // images, audio, files: their bytes are not prompt text a reviewer reads
  return { type };
}

function simplifyContent(c: unknown): Json {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map(simplifyPart);
  return null;
}

/** Chat Completions request: model, stream flag and the messages as turns. */
export function parseChatRequest(body: unknown): LlmRequestInfo {
  const info: LlmRequestInfo = { model: '', stream: false, turns: [], continues: false };
  if (!isRecord(body)) return info;
  info.model = str(body.model) ?? '';
  info.stream = body.stream === true;
  if (!Array.isArray(body.messages)) return info;
  for (const m of body.messages) {
    if (!isRecord(m)) continue;
    const turn: LlmTurn = { role: str(m.role) ?? 'user', content: simplifyContent(m.content) };
    if (Array.isArray(m.tool_calls)) {
      turn.tool_calls = m.tool_calls.map((tc): Json => {
        const fn = isRecord(tc) && isRecord(tc.function) ? tc.function : {};
        return { id: isRecord(tc) ? str(tc.id) : null, name: str(fn.name), arguments: str(fn.arguments) };
      });
    }
    if (typeof m.tool_call_id === 'string') turn.tool_call_id = m.tool_call_id;
    info.turns.push(turn);
  }
  return info;
}

/** Responses request: instructions as a system turn, then each input item. */
export function parseResponsesRequest(body: unknown): LlmRequestInfo {
  const info: LlmRequestInfo = { model: '', stream: false, turns: [], continues: false };
  if (!isRecord(body)) return info;
  info.model = str(body.model) ?? '';
  info.stream = body.stream === true;
  info.continues = typeof body.previous_response_id === 'string';
  if (typeof body.instructions === 'string') info.turns.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') {
    info.turns.push({ role: 'user', content: body.input });
  } else if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (!isRecord(item)) continue;
      const type = str(item.type) ?? (item.role !== undefined ? 'message' : 'unknown');
      if (type === 'message') {
        info.turns.push({ role: str(item.role) ?? 'user', content: simplifyContent(item.content) });
      } else if (type === 'function_call') {
        info.turns.push({
          role: 'assistant',
          content: null,
          tool_calls: [{ id: str(item.call_id), name: str(item.name), arguments: str(item.arguments) }],
        });
      } else if (type === 'function_call_output') {
        info.turns.push({ role: 'tool', content: asJson(item.output ?? null), tool_call_id: str(item.call_id) });
      } else if (type !== 'reasoning') {
        info.turns.push({ role: type, content: null });
      }
    }
  }
  return info;
}

/** A non-streamed chat.completion object. */
export function chatReplyFromCompletion(obj: unknown): LlmReply {
  const r = emptyReply();
  if (!isRecord(obj)) return r;
  if (obj.error !== undefined) {
    r.error = asJson(obj.error);
    return r;
  }
  r.id = str(obj.id);
  r.model = str(obj.model);
  r.usage = asJson(obj.usage ?? null);
  const choice = Array.isArray(obj.choices) && isRecord(obj.choices[0]) ? obj.choices[0] : {};
  r.stopReason = str(choice.finish_reason);
  const msg = isRecord(choice.message) ? choice.message : {};
  r.assistantText = str(msg.content) ?? str(msg.refusal) ?? '';
  if (Array.isArray(msg.tool_calls)) {
    for (const tc of msg.tool_calls) {
      if (!isRecord(tc)) continue;
      const fn = isRecord(tc.function) ? tc.function : {};
      r.toolCalls.push({ id: str(tc.id) ?? '', name: str(fn.name) ?? '', arguments: str(fn.arguments) ?? '' });
    }
  }
  return r;
}

export class ChatStreamAssembler implements LlmStreamAssembler {
  private readonly reply = emptyReply();
  private text = '';
  private readonly calls = new Map<number, LlmToolCall>();

  event(_name: string, data: string): void {
    if (data.trim() === '[DONE]') return;
    const d = parseJson(data);
    if (!isRecord(d)) return;
    if (d.error !== undefined) {
      this.reply.error = asJson(d.error);
      return;
    }
    if (this.reply.id === null) this.reply.id = str(d.id);
    if (this.reply.model === null) this.reply.model = str(d.model);
    if (isRecord(d.usage)) this.reply.usage = asJson(d.usage);
    if (!Array.isArray(d.choices)) return;
    for (const choice of d.choices) {
      // n > 1 is rare for agents; the first choice is the one they act on
      if (!isRecord(choice) || (typeof choice.index === 'number' && choice.index !== 0)) continue;
      if (typeof choice.finish_reason === 'string') this.reply.stopReason = choice.finish_reason;
      const delta = isRecord(choice.delta) ? choice.delta : {};
      if (typeof delta.content === 'string') this.text += delta.content;
      if (typeof delta.refusal === 'string') this.text += delta.refusal;
      if (!Array.isArray(delta.tool_calls)) continue;
      for (const tc of delta.tool_calls) {
        if (!isRecord(tc)) continue;
        const index = typeof tc.index === 'number' ? tc.index : this.calls.size;
        let call = this.calls.get(index);
        if (!call) {
          call = { id: '', name: '', arguments: '' };
          this.calls.set(index, call);
        }
        if (typeof tc.id === 'string') call.id = tc.id;
        const fn = isRecord(tc.function) ? tc.function : {};
        if (typeof fn.name === 'string') call.name += fn.name;
        if (typeof fn.arguments === 'string') call.arguments += fn.arguments;
      }
    }
  }

  result(): LlmReply {
    return {
      ...this.reply,
      assistantText: this.text,
      toolCalls: [...this.calls].sort((a, b) => a[0] - b[0]).map(([, c]) => ({ ...c })),
    };
  }
}

function responseOutput(resp: Record<string, unknown>, r: LlmReply): void {
  const texts: string[] = [];
  if (!Array.isArray(resp.output)) return;
  for (const item of resp.output) {
    if (!isRecord(item)) continue;
    if (item.type === 'message' && Array.isArray(item.content)) {
      for (const c of item.content) {
        if (isRecord(c) && c.type === 'output_text' && typeof c.text === 'string') texts.push(c.text);
        if (isRecord(c) && c.type === 'refusal' && typeof c.refusal === 'string') texts.push(c.refusal);
      }
    }
    if (item.type === 'function_call') {
      r.toolCalls.push({ id: str(item.call_id) ?? str(item.id) ?? '', name: str(item.name) ?? '', arguments: str(item.arguments) ?? '' });
    }
  }
  r.assistantText = texts.join('');
}

function responseStop(resp: Record<string, unknown>): string | null {
  const details = isRecord(resp.incomplete_details) ? resp.incomplete_details : null;
  return str(details?.reason) ?? str(resp.status);
}

/** A non-streamed `response` object. */
export function responsesReplyFromResponse(obj: unknown): LlmReply {
  const r = emptyReply();
  if (!isRecord(obj)) return r;
  if (isRecord(obj.error)) r.error = asJson(obj.error);
  r.id = str(obj.id);
  r.model = str(obj.model);
  r.usage = asJson(obj.usage ?? null);
  r.stopReason = responseStop(obj);
  responseOutput(obj, r);
  return r;
}

export class ResponsesStreamAssembler implements LlmStreamAssembler {
  private readonly reply = emptyReply();
  private text = '';
  /** function calls by output_index */
  private readonly calls = new Map<number, LlmToolCall>();
  private final: Record<string, unknown> | null = null;

  event(name: string, data: string): void {
    const d = parseJson(data);
    if (!isRecord(d)) return;
    const type = str(d.type) ?? name;
    const outputIndex = typeof d.output_index === 'number' ? d.output_index : -1;
    switch (type) {
      case 'response.created':
      case 'response.in_progress': {
        const resp = isRecord(d.response) ? d.response : {};
        this.reply.id = str(resp.id) ?? this.reply.id;
        this.reply.model = str(resp.model) ?? this.reply.model;
        break;
      }
      case 'response.output_item.added':
      case 'response.output_item.done': {
        const item = isRecord(d.item) ? d.item : {};
        if (item.type !== 'function_call') break;
        let call = this.calls.get(outputIndex);
        if (!call) {
          call = { id: '', name: '', arguments: '' };
          this.calls.set(outputIndex, call);
        }
        call.id = str(item.call_id) ?? call.id;
        call.name = str(item.name) ?? call.name;
        // `done` carries the whole arguments text; `added` carries '' and deltas follow
        if (type === 'response.output_item.done' && typeof item.arguments === 'string') call.arguments = item.arguments;
        break;
      }
      case 'response.output_text.delta':
      case 'response.refusal.delta':
        if (typeof d.delta === 'string') this.text += d.delta;
        break;
      case 'response.function_call_arguments.delta': {
        const call = this.calls.get(outputIndex);
        if (call && typeof d.delta === 'string') call.arguments += d.delta;
        break;
      }
      case 'response.function_call_arguments.done': {
        const call = this.calls.get(outputIndex);
        if (call && typeof d.arguments === 'string') call.arguments = d.arguments;
        break;
      }
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isRecord(d.response)) this.final = d.response;
        break;
      case 'error':
        this.reply.error = asJson({ code: d.code ?? null, message: d.message ?? null });
        break;
      default:
        break;
    }
  }

  result(): LlmReply {
    const r: LlmReply = {
      ...this.reply,
      assistantText: this.text,
      toolCalls: [...this.calls].sort((a, b) => a[0] - b[0]).map(([, c]) => ({ ...c })),
    };
    if (this.final) {
      r.id = str(this.final.id) ?? r.id;
      r.model = str(this.final.model) ?? r.model;
      r.usage = asJson(this.final.usage ?? null);
      r.stopReason = responseStop(this.final);
      if (isRecord(this.final.error)) r.error = asJson(this.final.error);
      // a client that missed deltas (or a server that sent none) still gets the final output
      if (r.assistantText === '' && r.toolCalls.length === 0) responseOutput(this.final, r);
    }
    return r;
  }
}
