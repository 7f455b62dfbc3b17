/** Shapes shared by the model-API readers. Pure types and helpers: no Node imports. */
import type { Json } from '../common/types';

export interface LlmToolCall {
  [key: string]: Json;
  id: string;
  name: string;
  /** the arguments as the model wrote them (a JSON text) */
  arguments: string;
}

/** One prompt turn, simplified for review: provider-specific noise (cache markers, image bytes) dropped. */
export interface LlmTurn {
  [key: string]: Json;
  role: string;
  content: Json;
}

export interface LlmRequestInfo {
  model: string;
  stream: boolean;
  turns: LlmTurn[];
  /** Responses API: the call continues a stored response, so every input item is new */
  continues: boolean;
}

export interface LlmReply {
  [key: string]: Json;
  id: string | null;
  model: string | null;
  assistantText: string;
  toolCalls: LlmToolCall[];
  /** token usage exactly as the API reported it (cost fields included where present) */
  usage: Json;
  stopReason: string | null;
  /** an error the API reported in-band (an `error` SSE event, a failed response) */
  error: Json;
}

/** Reassembles one streamed reply from its SSE events. */
export interface LlmStreamAssembler {
  event(name: string, data: string): void;
  result(): LlmReply;
}

export function emptyReply(): LlmReply {
  return { id: null, model: null, assistantText: '', toolCalls: [], usage: null, stopReason: null, error: null };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** JSON.parse that returns undefined instead of throwing: streams may carry junk. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Makes an unknown parsed value safe to store as Json (drops functions/undefined, which JSON never has). */
export function asJson(v: unknown): Json {
  if (v === undefined) return null;
  return v as Json;
}

/** The text a reviewer reads for a model call: `<model>: <last user prompt>`. */
export function llmCommandText(model: string, turns: LlmTurn[], max = 200): string {
  let prompt = '';
  let trailingToolResults = false;
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i];
    const text = turnText(t);
    if (t.role === 'user' && text !== '') {
      prompt = text;
      break;
    }
    if (t.role === 'tool' || t.role === 'user') trailingToolResults = true;
  }
  prompt = prompt.replace(/\s+/g, ' ').trim();
  if (prompt.length > max) prompt = prompt.slice(0, max - 1) + '…';
  if (trailingToolResults) prompt = prompt === '' ? '(tool results)' : `${prompt} (+ tool results)`;
  return `${model || '(unknown model)'}: ${prompt}`;
}

/** The plain text of a turn: a string content, or its text blocks joined. */
export function turnText(t: LlmTurn): string {
  const c = t.content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  const parts: string[] = [];
  for (const b of c) {
    if (isRecord(b) && (b.type === 'text' || b.type === 'input_text' || b.type === 'output_text') && typeof b.text === 'string') {
      parts.push(b.text);
    }
  }
  return parts.join('\n');
}
