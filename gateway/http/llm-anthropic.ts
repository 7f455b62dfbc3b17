/**
 * Anthropic Messages API (POST /v1/messages): the prompt turns of a request, and the reply,
 * whole or reassembled from its SSE stream (message_start, content_block_start,
 * content_block_delta with text_delta / input_json_delta, content_block_stop, message_delta,
 * message_stop, ping, error). Pure: no Node imports.
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
} from './llm-types';

function simplifyBlock(b: unknown): Json {
  if (typeof b === 'string') return { type: 'text', text: b };
  if (!isRecord(b)) return null;
  switch (b.type) {
    case 'text':
      return { type: 'text', text: str(b.text) ?? '' };
    case 'tool_use':
      return { type: 'tool_use', id: str(b.id), name: str(b.name), input: asJson(b.input) };
    case 'tool_result': {
      const content = Array.isArray(b.content) ? b.content.map(simplifyBlock) : asJson(b.content ?? null);
      const out: Record<string, Json> = { type: 'tool_result', tool_use_id: str(b.tool_use_id), content };
      if (b.is_error === true) out.is_error = true;
      return out;
    }
    case 'thinking':
      return { type: 'thinking', thinking: str(b.thinking) ?? '' };
    case 'redacted_thinking':
      return { type: 'redacted_thinking' };
    default:
      // images, documents and the like: their bytes are not prompt text a reviewer reads
      return { type: typeof b.type === 'string' ? b.type : 'unknown' };
  }
}

function simplifyContent(c: unknown): Json {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map(simplifyBlock);
  return null;
}

/** The model, stream flag and prompt turns (system first) of a Messages request body. */
export function parseAnthropicRequest(body: unknown): LlmRequestInfo {
  const info: LlmRequestInfo = { model: '', stream: false, turns: [], continues: false };
  if (!isRecord(body)) return info;
  info.model = str(body.model) ?? '';
  info.stream = body.stream === true;
  if (body.system !== undefined && body.system !== null) {
    info.turns.push({ role: 'system', content: simplifyContent(body.system) });
  }
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      if (!isRecord(m)) continue;
      info.turns.push({ role: str(m.role) ?? 'user', content: simplifyContent(m.content) });
    }
  }
  return info;
}

/** The reply of a non-streamed call (a `message` object). */
export function anthropicReplyFromMessage(msg: unknown): LlmReply {
  const r = emptyReply();
  if (!isRecord(msg)) return r;
  if (msg.type === 'error') {
    r.error = asJson(msg.error ?? msg);
    return r;
  }
  r.id = str(msg.id);
  r.model = str(msg.model);
  r.stopReason = str(msg.stop_reason);
  r.usage = asJson(msg.usage ?? null);
  const texts: string[] = [];
  if (Array.isArray(msg.content)) {
    for (const b of msg.content) {
      if (!isRecord(b)) continue;
      if (b.type === 'text' && typeof b.text === 'string') texts.push(b.text);
      if (b.type === 'tool_use') {
        r.toolCalls.push({ id: str(b.id) ?? '', name: str(b.name) ?? '', arguments: JSON.stringify(b.input ?? {}) });
      }
    }
  }
  r.assistantText = texts.join('');
  return r;
}

interface Block {
  type: string;
  text: string;
  call?: LlmToolCall;
  json: string;
  /** the block started with a non-empty input (not the documented `{}`) */
  initialInput?: string;
}

export class AnthropicStreamAssembler implements LlmStreamAssembler {
  private readonly reply = emptyReply();
  private readonly blocks = new Map<number, Block>();
  private usage: Record<string, Json> = {};

  event(name: string, data: string): void {
    const d = parseJson(data);
    if (!isRecord(d)) return;
    const type = str(d.type) ?? name;
    switch (type) {
      case 'message_start': {
        const m = isRecord(d.message) ? d.message : {};
        this.reply.id = str(m.id);
        this.reply.model = str(m.model);
        if (isRecord(m.usage)) Object.assign(this.usage, m.usage as Record<string, Json>);
        break;
      }
      case 'content_block_start': {
        const cb = isRecord(d.content_block) ? d.content_block : {};
        const index = typeof d.index === 'number' ? d.index : this.blocks.size;
        const block: Block = { type: str(cb.type) ?? 'unknown', text: str(cb.text) ?? '', json: '' };
        if (block.type === 'tool_use' || block.type === 'server_tool_use') {
          block.call = { id: str(cb.id) ?? '', name: str(cb.name) ?? '', arguments: '' };
          if (isRecord(cb.input) && Object.keys(cb.input).length > 0) block.initialInput = JSON.stringify(cb.input);
          this.reply.toolCalls.push(block.call);
        }
        this.blocks.set(index, block);
        break;
      }
      case 'content_block_delta': {
        const block = this.blocks.get(typeof d.index === 'number' ? d.index : -1);
        const delta = isRecord(d.delta) ? d.delta : {};
        if (!block) break;
        if (delta.type === 'text_delta' && typeof delta.text === 'string') block.text += delta.text;
        if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') block.json += delta.partial_json;
        break;
      }
      case 'content_block_stop': {
        const block = this.blocks.get(typeof d.index === 'number' ? d.index : -1);
        if (block?.call) block.call.arguments = block.json !== '' ? block.json : (block.initialInput ?? '{}');
        break;
      }
      case 'message_delta': {
        const delta = isRecord(d.delta) ? d.delta : {};
        if (typeof delta.stop_reason === 'string') this.reply.stopReason = delta.stop_reason;
        // message_delta usage counts are cumulative: they replace what message_start said
        if (isRecord(d.usage)) Object.assign(this.usage, d.usage as Record<string, Json>);
        break;
      }
      case 'error':
        this.reply.error = asJson(d.error ?? d);
        break;
      default:
        break;
    }
  }

  result(): LlmReply {
    const texts: string[] = [];
    for (const [, b] of [...this.blocks].sort((a, b) => a[0] - b[0])) {
      if (b.type === 'text') texts.push(b.text);
      // a stream cut before content_block_stop still shows what arrived
      if (b.call && b.call.arguments === '') b.call.arguments = b.json !== '' ? b.json : (b.initialInput ?? '{}');
    }
    return {
      ...this.reply,
      assistantText: texts.join(''),
      toolCalls: this.reply.toolCalls.map((c) => ({ ...c })),
      usage: Object.keys(this.usage).length > 0 ? { ...this.usage } : null,
    };
  }
}
