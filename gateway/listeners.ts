import type { StartListener } from './core/listener';
import type { Protocol } from './common/types';
import { startPostgresListener } from './postgres/listener';
import { startSshListener } from './ssh/listener';
import { startHttpListener } from './http/listener';
import { startMcpHttpListener } from './mcp/http-transport';
import { startMcpListener } from './mcp/listener';
import { startKubernetesListener } from './kubernetes/listener';

/**
 * The protocol listeners this build has. A protocol mapped to null is valid in the config
 * but has no listener yet: the gateway says so and starts the others.
 */
const LISTENERS: Record<Protocol, StartListener | null> = {
  postgres: startPostgresListener,
  ssh: startSshListener,
  http: startHttpListener,
  kubernetes: startKubernetesListener,
  // an MCP server with a url is reached over HTTP on the connection's listen address; else stdio
  mcp: (ctx) => ('url' in (ctx.connection.upstream as object) ? startMcpHttpListener(ctx) : startMcpListener(ctx)),
};

export function listenerFor(protocol: Protocol): StartListener | null {
  return LISTENERS[protocol];
}
