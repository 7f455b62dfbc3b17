/** The `protocol: mcp` listener: stdio servers the gateway starts itself (`upstream.command`). */
import type { Listener, ListenerContext, StartListener } from '../core/listener';
import { FlightlogError } from '../core/errors';
import { startMcpStdioListener } from './stdio-listener';

export const startMcpListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const upstream = ctx.connection.upstream as unknown as Record<string, unknown>;
  if (Array.isArray(upstream.command)) return startMcpStdioListener(ctx);
  throw new FlightlogError('E_MCP_UPSTREAM', `connection "${ctx.connection.name}": this build relays MCP servers over stdio only (upstream.command)`);
};
