/** JSON-RPC error shapes and the options of the MCP HTTP listener. Pure: no Node imports. */
import type { Json } from '../common/types';

export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
/** implementation-defined server error: what the gateway itself answers (auth, upstream down, limits) */
export const GATEWAY_ERROR = -32000;

/** A JSON-RPC error response; `id` null where the request's id is not known. */
export function jsonRpcError(id: Json, code: number, message: string): Json {
  return { jsonrpc: '2.0', id, error: { code, message: `Flightlog: ${message}` } };
}

export interface McpHttpOptions {
  /** time to the server's response head (an event stream may then stay open) */
  timeoutMs: number;
  tokenHeader?: string;
  /** largest JSON-RPC message (request body, JSON response, one event) the gateway reads whole */
  maxMessageBytes: number;
  /** a session with no request and no open stream for this long is ended */
  idleTimeoutMs: number;
}

export function readMcpHttpOptions(o: Record<string, unknown>): McpHttpOptions {
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : d);
  return {
    timeoutMs: num(o.timeoutMs, 60_000),
    tokenHeader: typeof o.tokenHeader === 'string' && o.tokenHeader !== '' ? o.tokenHeader : undefined,
    maxMessageBytes: num(o.maxMessageBytes, 32 * 1024 * 1024),
    idleTimeoutMs: num(o.idleTimeoutMs, 30 * 60_000),
  };
}
