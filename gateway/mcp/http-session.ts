/**
 * The transport-neutral MCP session (session.ts) as the HTTP proxy uses it: one Flightlog session
 * per MCP session, a hold awaited in place (an HTTP request simply waits for its answer).
 */
import type { ListenerContext } from '../core/listener';
import type { Json } from '../common/types';
import { McpSession, mcpSessionContext, type JsonRpcMessage, type Verdict } from './session';
import type { ToolBaselines } from './tool-drift';

/** forward: send the request upstream; otherwise answer the client with `reply` (none: 202, nothing to say). */
export type ClientVerdict = { forward: true } | { forward: false; reply?: JsonRpcMessage | JsonRpcMessage[] };

export interface HttpMcpSession {
  /** Records a client message (a batch is one message); resolves once it may go on, after any hold. */
  clientMessage(json: unknown, raw: Buffer): Promise<ClientVerdict>;
  /**
   * Records a server message (undefined json: a body that did not parse). Returns what the agent
   * gets instead on a `mask: live` connection when masking found something, else null (send raw).
   */
  serverMessage(json: unknown, raw: Buffer): string | null;
  /** The live-masked form of a server message without recording it (a replayed event already recorded), or null. */
  liveMask(json: unknown): string | null;
  onTerminate(handler: (reason: string, message: string) => void): void;
  close(status: 'closed' | 'error', reason: string): void;
}

export interface HttpMcpSessionOpen {
  identity: string;
  runId: string | null;
  clientAddr: string;
  /** the server's endpoint, origin and path (no credentials) */
  upstream: string;
  /** `streamable-http` or `sse` (legacy) */
  transport: string;
  tools: ToolBaselines;
}

async function settle(v: Verdict): Promise<ClientVerdict> {
  const final = v.action === 'hold' ? await v.outcome : v;
  if (final.action === 'forward') return { forward: true };
  if (final.action === 'answer') return { forward: false, reply: final.message };
  return { forward: false };
}

export function openHttpMcpSession(ctx: ListenerContext, open: HttpMcpSessionOpen): HttpMcpSession {
  const meta: Record<string, Json> = { transport: open.transport, upstream: open.upstream };
  const session = ctx.openSession({ identity: open.identity, runId: open.runId, clientAddr: open.clientAddr, meta });
  const mcp = new McpSession(mcpSessionContext(ctx, session, { identity: open.identity, runId: open.runId }, open.tools));
  const live = ctx.connection.mask === 'live';
  return {
    clientMessage: async (json, raw) => settle(await mcp.clientMessage(json, raw)),
    serverMessage(json, raw) {
      mcp.serverMessage(json, raw);
      return this.liveMask(json);
    },
    liveMask(json) {
      if (!live || json === undefined) return null;
      // mask: live — the agent reads what the recording keeps, as the stdio transport does
      const masked = ctx.masker.maskValue(json as Json);
      return masked.hits.length ? JSON.stringify(masked.value) : null;
    },
    onTerminate: (h) => session.onTerminate(h),
    close: (status, reason) => mcp.close(reason, status),
  };
}
