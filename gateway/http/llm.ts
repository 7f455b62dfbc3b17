/**
 * Recognises a model-API call on an `llm:` connection and picks the reader for its dialect.
 * Pure: no Node imports.
 */
import { AnthropicStreamAssembler, anthropicReplyFromMessage, parseAnthropicRequest } from './llm-anthropic';
import {
  ChatStreamAssembler,
  ResponsesStreamAssembler,
  chatReplyFromCompletion,
  parseChatRequest,
  parseResponsesRequest,
  responsesReplyFromResponse,
} from './llm-openai';
import type { LlmReply, LlmRequestInfo, LlmStreamAssembler } from './llm-types';

export type LlmEndpoint = 'anthropic-messages' | 'openai-chat' | 'openai-responses';

export interface LlmDialect {
  endpoint: LlmEndpoint;
  parseRequest(body: unknown): LlmRequestInfo;
  replyFromBody(body: unknown): LlmReply;
  stream(): LlmStreamAssembler;
}

/**
 * The endpoint of a request, or null when it is not a model call. Matched on the path's end so
 * a base URL with or without `/v1` (or a provider prefix) works.
 */
export function detectLlmEndpoint(llm: 'anthropic' | 'openai', method: string, pathname: string): LlmEndpoint | null {
  if (method !== 'POST') return null;
  const p = pathname.replace(/\/+$/, '');
  if (llm === 'anthropic') return /(^|\/)messages$/.test(p) ? 'anthropic-messages' : null;
  if (/(^|\/)chat\/completions$/.test(p)) return 'openai-chat';
  if (/(^|\/)responses$/.test(p)) return 'openai-responses';
  return null;
}

export function llmDialect(endpoint: LlmEndpoint): LlmDialect {
  switch (endpoint) {
    case 'anthropic-messages':
      return {
        endpoint,
        parseRequest: parseAnthropicRequest,
        replyFromBody: anthropicReplyFromMessage,
        stream: () => new AnthropicStreamAssembler(),
      };
    case 'openai-chat':
      return { endpoint, parseRequest: parseChatRequest, replyFromBody: chatReplyFromCompletion, stream: () => new ChatStreamAssembler() };
    case 'openai-responses':
      return {
        endpoint,
        parseRequest: parseResponsesRequest,
        replyFromBody: responsesReplyFromResponse,
        stream: () => new ResponsesStreamAssembler(),
      };
  }
}
