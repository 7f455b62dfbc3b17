/** The shape of flightlog.yaml after validation. Pure types. */
import type { Protocol } from './types';
import type { GuardrailAction, GuardrailRule } from './policy-types';

/** Where an upstream secret comes from. Never an inline value. */
export type SecretRef = { env: string } | { file: string };

export interface PostgresUpstream {
  host: string;
  port: number;
  user: string;
  database?: string;
  /** databases a client may ask for by name (default: [database]); any other is refused, never swapped */
  databases?: string[];
  password?: SecretRef;
  /** as libpq's sslmode; prefer (the default) falls back to plain when the server has no TLS */
  tls?: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** CA file for verify-full */
  ca?: string;
}

export interface SshUpstream {
  host: string;
  port: number;
  user: string;
  password?: SecretRef;
  privateKey?: SecretRef;
  /** pinned host key (OpenSSH "type base64" form); learned on first use when absent */
  hostKey?: string;
}

export interface HttpUpstream {
  url: string;
  /** headers injected upstream, each value a secret reference or a plain string */
  headers?: Record<string, SecretRef | string>;
  bearer?: SecretRef;
  basic?: { user: string; password: SecretRef };
  query?: Record<string, SecretRef>;
  /** verify the upstream certificate (default true) */
  verify?: boolean;
  ca?: string;
}

/**
 * A Kubernetes API server: `server` with its own credentials, or a kubeconfig file and one of
 * its contexts. The CA is verified unless `verify: false`.
 */
export interface KubernetesUpstream {
  /** https://host:port of the API server (absent with kubeconfig) */
  server?: string;
  token?: SecretRef;
  ca?: { file: string };
  clientCert?: { file: string };
  clientKey?: SecretRef;
  kubeconfig?: string;
  /** the kubeconfig context to use (default: its current-context) */
  context?: string;
  /** verify the upstream certificate (default true) */
  verify?: boolean;
}

// --- MCP (issue 15) ---
/** An MCP server the gateway starts itself (stdio), one child per agent session. */
export interface McpStdioUpstream {
  /** the server's command line: [CMD, ARGS…], run without a shell */
  command: string[];
  /** variables set for the server (on top of PATH, HOME and the locale), each a secret reference */
  env?: Record<string, SecretRef>;
  /** working directory (relative to the config file) */
  cwd?: string;
  /**
   * Postgres connections of this gateway the server reaches its database through: the server gets
   * PG* variables for the gateway's listener and a token of the agent's run minted for its session
   */
  via?: string[];
}
export type McpUpstream = McpStdioUpstream;
// --- end MCP ---

// --- MCP over HTTP (issue 15) ---
/** An MCP server reached over HTTP (Streamable HTTP or the legacy HTTP+SSE transport); needs `listen`. */
export interface McpHttpUpstream {
  /** the server's MCP endpoint, e.g. https://mcp.example.com/mcp (or …/sse for the legacy transport) */
  url: string;
  /** headers injected upstream, each value a secret reference or a plain string */
  headers?: Record<string, SecretRef | string>;
  bearer?: SecretRef;
  verify?: boolean;
  ca?: string;
}
// --- end MCP over HTTP ---

export type Upstream = PostgresUpstream | SshUpstream | HttpUpstream | KubernetesUpstream | McpUpstream | McpHttpUpstream;

export interface ConnectionConfig {
  name: string;
  protocol: Protocol;
  /** host and port to listen on (an MCP stdio connection has none in the file: 127.0.0.1, port 0) */
  listen: { host: string; port: number };
  upstream: Upstream;
  /** identity names allowed to use this connection */
  identities: string[];
  /** record (default): the recording is masked, traffic untouched; live: the agent receives masked values too */
  mask: 'record' | 'live';
  /** model API dialect, for protocol http */
  llm?: 'anthropic' | 'openai';
  /** protocol-specific options, validated by the loader (allowForwarding, envAllow, tokenHeader…) */
  options: Record<string, unknown>;
  /** what happens to a command no guardrail matches (default allow) */
  guardrails?: { default: GuardrailAction };
  /** how long sessions are kept after they end (`30d`; units h, d, w), for `flightlog gc`; else the global default */
  retention?: string;
}

export interface RecordingConfig {
  /** rows kept per result (default 100) */
  headRows: number;
  /** bytes kept of each large payload (default 64 KiB) */
  payloadHead: number;
}

export interface ControlApiConfig {
  host: string;
  /** 0 = a random free port */
  port: number;
}

export interface FlightlogConfig {
  /** the file it was read from, if any */
  file: string | null;
  connections: ConnectionConfig[];
  recording: RecordingConfig;
  controlApi: ControlApiConfig;
  /** first matching rule wins (gateway/policy/rules.ts) */
  guardrails: GuardrailRule[];
  /** retention for connections that set none; absent: sessions are kept until removed by hand */
  retention?: string;
}
