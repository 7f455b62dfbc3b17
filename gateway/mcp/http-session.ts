/**
 * The transport-neutral MCP session (session.ts) as the HTTP proxy uses it: one Flightlog session
 * per MCP session, a hold awaited in place (an HTTP request simply waits for its answer).
 */
import type { ListenerContext } from '../core/listener';
import type { Json } from '../core/types';
import { McpSession, type JsonRpcMessage, type Verdict } from './session';
import type { ToolBaselines } from './tool-drift';

/** forward: send the request upstream; otherwise answer the client with `reply` (none: 202, nothing to say). */
export type ClientVerdict = { forward: true } | { forward: false; reply?: JsonRpcMessage | JsonRpcMessage[] };

export interface HttpMcpSession {
  /** Records a client message (a batch is one message); resolves once it may go on, after any hold. */
  clientMessage(json: unknown, raw: Buffer): Promise<ClientVerdict>;
  /** Records a server message (undefined json: a body that did not parse). */
  serverMessage(json: unknown, raw: Buffer): void;
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
  const mcp = new McpSession({
    session,
    connection: ctx.connection.name,
    identity: open.identity,
    runId: open.runId,
    policy: ctx.policy,
    holdForApproval: ctx.holdForApproval,
    maskText: (t) => ctx.masker.maskText(t).text,
    tools: open.tools,
    payloadHead: ctx.recording.payloadHead,
  });
  return {
    clientMessage: async (json, raw) => settle(await mcp.clientMessage(json, raw)),
    serverMessage: (json, raw) => mcp.serverMessage(json, raw),
    onTerminate: (h) => session.onTerminate(h),
    close: (status, reason) => mcp.close(reason, status),
  };
}
