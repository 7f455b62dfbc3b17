/**
 * The MCP session as the HTTP proxy uses it: one Flightlog session per MCP session, every
 * JSON-RPC message put to it on the way through.
 */
import type { ListenerContext } from '../core/listener';
import type { Direction, Json, SessionRecorder } from '../core/types';

export type ClientVerdict = { forward: true } | { forward: false; reply?: Json };

export interface HttpMcpSession {
  /** Records a client→server message; resolves once it may go on (after any hold), or with the answer that replaces it. */
  clientMessage(json: unknown, raw: string): Promise<ClientVerdict>;
  /** Records a server→client message; returns the text to send instead (live masking), or null to send it as is. */
  serverMessage(json: unknown, raw: string): string | null;
  /** Records a body that is not a JSON-RPC message, so nothing passes unrecorded. */
  unparsed(direction: Direction, text: string): void;
  onTerminate(handler: (reason: string, message: string) => void): void;
  close(status: 'closed' | 'error', reason: string): void;
}

export interface HttpMcpSessionOpen {
  identity: string;
  runId: string | null;
  clientAddr: string;
  upstream: string;
}

export function openHttpMcpSession(ctx: ListenerContext, open: HttpMcpSessionOpen): HttpMcpSession {
  const rec: SessionRecorder = ctx.openSession({ identity: open.identity, runId: open.runId, clientAddr: open.clientAddr, meta: { transport: 'http', upstream: open.upstream } });
  return {
    async clientMessage(json: unknown): Promise<ClientVerdict> {
      if (rec.failed) return { forward: false, reply: null };
      rec.event('mcp', 'client→upstream', json as Json);
      await rec.flushed();
      return { forward: true };
    },
    serverMessage(json: unknown): string | null {
      rec.event('mcp', 'upstream→client', json as Json);
      return null;
    },
    unparsed(direction: Direction, text: string): void {
      rec.event('mcp-unparsed', direction, text);
    },
    onTerminate: (h) => rec.onTerminate(h),
    close: (status, reason) => rec.close(status, reason),
  };
}
