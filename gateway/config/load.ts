import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Document } from 'yaml';
import { ConfigError, FlightlogError } from '../core/errors';
import type { Protocol } from '../common/types';
import type { ConnectionConfig, FlightlogConfig, KubernetesUpstream, McpHttpUpstream, McpUpstream, RecordingConfig, SecretRef, Upstream } from '../common/config-schema';
import { checkConnectionGuardrails, checkGuardrails } from './guardrails';

export const DEFAULT_RECORDING: RecordingConfig = { headRows: 100, payloadHead: 64 * 1024 };
const PROTOCOLS: Protocol[] = ['postgres', 'ssh', 'http', 'kubernetes', 'mcp'];

export type ConfigPath = Array<string | number>;

/** One refused value, as the collecting validator reports it (a form places it beside its field). */
export interface ConfigIssue {
  path: ConfigPath;
  /** `connections[0].upstream.host` */
  docPath: string;
  /** what was expected, without the file and path: `expected a host name, but it is missing` */
  expected: string;
}

/** Thrown inside a collecting check to skip the rest of one field; never escapes `guard`. */
class SkipField extends Error {}

/** Validation walks plain JS values and reports `file:line: path: expected …`. */
export class Checker {
  constructor(
    readonly file: string,
    private readonly doc: Document | null,
    private readonly lines: LineCounter | null,
    /** when set, every refused field is noted here and checking goes on (see guard) */
    private readonly issues: ConfigIssue[] | null = null,
  ) {}

  fail(p: Array<string | number>, expected: string): never {
    // Keys and values come from the file: a newline in one must not break the one-line error.
    if (this.issues) {
      this.issues.push({ path: [...p], docPath: oneLine(formatPath(p)), expected: oneLine(expected) });
      throw new SkipField();
    }
    throw new ConfigError(this.file, oneLine(formatPath(p)), oneLine(expected), this.lineOf(p));
  }

  /**
   * Checks one field. Normally the first failure throws as before; when collecting, the failure
   * is noted and `undefined` stands in for the field so the other fields are still checked.
   * The result is then only good for reporting: a caller never uses a config that had issues.
   */
  guard<T>(fn: () => T): T {
    if (!this.issues) return fn();
    try {
      return fn();
    } catch (err) {
      if (err instanceof SkipField) return undefined as T;
      throw err;
    }
  }

  private lineOf(p: Array<string | number>): number | undefined {
    if (!this.doc || !this.lines) return undefined;
    for (let n = p.length; n >= 0; n--) {
      const node = this.doc.getIn(p.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  object(v: unknown, p: Array<string | number>, what = 'a mapping'): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(p, `expected ${what}`);
    return v as Record<string, unknown>;
  }

  string(v: unknown, p: Array<string | number>, what = 'a string'): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(p, `expected ${what}${describe(v)}`);
    return v as string;
  }

  port(v: unknown, p: Array<string | number>): number {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) this.fail(p, `expected a port number 0-65535${describe(v)}`);
    return n as number;
  }

  bool(v: unknown, p: Array<string | number>): boolean {
    if (typeof v !== 'boolean') this.fail(p, `expected true or false${describe(v)}`);
    return v as boolean;
  }

  oneOf<T extends string>(v: unknown, p: Array<string | number>, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T)) this.fail(p, `expected one of ${options.join(', ')}${describe(v)}`);
    return v as T;
  }

  keys(o: Record<string, unknown>, p: Array<string | number>, allowed: string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail([...p, k], `unknown key "${k}" (expected one of: ${allowed.join(', ')})`);
    }
  }

  /** A secret must be referenced ({env: NAME} or {file: PATH}), never written inline. */
  secret(v: unknown, p: Array<string | number>): SecretRef {
    if (typeof v === 'string' || typeof v === 'number') {
      this.fail(p, 'secrets are referenced, never written here: use { env: VARIABLE } or { file: PATH }');
    }
    const o = this.object(v, p, '{ env: VARIABLE } or { file: PATH }');
    const keys = Object.keys(o);
    if (keys.length !== 1 || (keys[0] !== 'env' && keys[0] !== 'file')) this.fail(p, 'expected { env: VARIABLE } or { file: PATH }');
    if (keys[0] === 'env') {
      const name = this.string(o.env, [...p, 'env'], 'an environment variable name');
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) this.fail([...p, 'env'], `expected an environment variable name, got "${name}"`);
      return { env: name };
    }
    return { file: this.string(o.file, [...p, 'file'], 'a file path') };
  }
}

function describe(v: unknown): string {
  if (v === undefined) return ', but it is missing';
  if (v === null) return ', got nothing';
  if (typeof v === 'string') return `, got "${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  if (typeof v === 'object') return Array.isArray(v) ? ', got a list' : ', got a mapping';
  return `, got ${String(v)}`;
}

function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function formatPath(p: Array<string | number>): string {
  let out = '';
  for (const part of p) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

function parseListen(c: Checker, v: unknown, p: Array<string | number>): { host: string; port: number } {
  if (typeof v === 'number') return { host: '127.0.0.1', port: c.port(v, p) };
  const s = c.string(v, p, 'host:port');
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s) ?? (/^\d+$/.test(s) ? [s, undefined, '127.0.0.1', s] : null);
  if (!m) c.fail(p, `expected host:port, got "${s}"`);
  return { host: m[1] ?? m[2], port: c.port(Number(m[3]), p) };
}

function checkUpstream(c: Checker, protocol: Protocol, v: unknown, p: Array<string | number>): Upstream {
  const o = c.object(v, p);
  switch (protocol) {
    case 'postgres': {
      c.guard(() => c.keys(o, p, ['host', 'port', 'user', 'database', 'databases', 'password', 'tls', 'ca']));
      const database = o.database === undefined ? undefined : c.guard(() => c.string(o.database, [...p, 'database']));
      let databases: string[] | undefined;
      if (o.databases !== undefined) {
        databases = c.guard(() => {
          if (!Array.isArray(o.databases) || o.databases.length === 0) c.fail([...p, 'databases'], `expected a list of database names a client may ask for${describe(o.databases)}`);
          return (o.databases as unknown[]).map((x, j) => c.string(x, [...p, 'databases', j], 'a database name'));
        });
        if (databases && database !== undefined && !databases.includes(database)) c.guard(() => c.fail([...p, 'database'], `expected one of databases (${databases!.join(', ')}), got "${database}"`));
      }
      return {
        host: c.guard(() => c.string(o.host, [...p, 'host'], 'a host name')),
        port: o.port === undefined ? 5432 : c.guard(() => c.port(o.port, [...p, 'port'])),
        user: c.guard(() => c.string(o.user, [...p, 'user'], 'a user name')),
        database,
        databases,
        password: o.password === undefined ? undefined : c.guard(() => c.secret(o.password, [...p, 'password'])),
        tls: o.tls === undefined ? undefined : c.guard(() => c.oneOf(o.tls, [...p, 'tls'], ['disable', 'prefer', 'require', 'verify-full'] as const)),
        ca: o.ca === undefined ? undefined : c.guard(() => c.string(o.ca, [...p, 'ca'], 'a CA file path')),
      };
    }
    case 'ssh': {
      c.guard(() => c.keys(o, p, ['host', 'port', 'user', 'password', 'privateKey', 'hostKey']));
      if (o.password === undefined && o.privateKey === undefined) c.guard(() => c.fail(p, 'expected password or privateKey (how the gateway logs in upstream)'));
      return {
        host: c.guard(() => c.string(o.host, [...p, 'host'], 'a host name')),
        port: o.port === undefined ? 22 : c.guard(() => c.port(o.port, [...p, 'port'])),
        user: c.guard(() => c.string(o.user, [...p, 'user'], 'a user name')),
        password: o.password === undefined ? undefined : c.guard(() => c.secret(o.password, [...p, 'password'])),
        privateKey: o.privateKey === undefined ? undefined : c.guard(() => c.secret(o.privateKey, [...p, 'privateKey'])),
        hostKey: o.hostKey === undefined ? undefined : c.guard(() => c.string(o.hostKey, [...p, 'hostKey'], 'an OpenSSH host key ("ssh-ed25519 AAAA…")')),
      };
    }
    case 'kubernetes':
      return checkKubernetesUpstream(c, o, p);
    case 'http': {
      const allowed = ['url', 'headers', 'bearer', 'basic', 'query', 'verify', 'ca'];
      c.guard(() => c.keys(o, p, allowed));
      const url = c.guard(() => {
        const u = c.string(o.url, [...p, 'url'], 'an http(s) URL');
        let parsed: URL;
        try {
          parsed = new URL(u);
        } catch {
          c.fail([...p, 'url'], `expected an http(s) URL, got "${u}"`);
        }
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') c.fail([...p, 'url'], `expected an http(s) URL, got "${u}"`);
        if (parsed.username || parsed.password) c.fail([...p, 'url'], 'credentials do not belong in the URL: use headers, basic or bearer with { env: … }');
        return u;
      });
      const verify = o.verify === undefined ? undefined : c.guard(() => c.bool(o.verify, [...p, 'verify']));
      const ca = o.ca === undefined ? undefined : c.guard(() => c.string(o.ca, [...p, 'ca'], 'a CA file path'));
      const headers: Record<string, SecretRef | string> = {};
      if (o.headers !== undefined) {
        const h = c.guard(() => c.object(o.headers, [...p, 'headers'])) ?? {};
        for (const [k, hv] of Object.entries(h)) {
          c.guard(() => {
            if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) c.fail([...p, 'headers', k], `"${k}" is not a valid header name`);
            // A credential-bearing header must come from a secret reference.
            if (typeof hv === 'string' && /^(authorization|proxy-authorization|x-api-key|api-key|cookie)$/i.test(k)) c.secret(hv, [...p, 'headers', k]);
            headers[k] = typeof hv === 'string' ? hv : c.secret(hv, [...p, 'headers', k]);
          });
        }
      }
      let basic: { user: string; password: SecretRef } | undefined;
      if (o.basic !== undefined) {
        basic = c.guard(() => {
          const b = c.object(o.basic, [...p, 'basic']);
          c.keys(b, [...p, 'basic'], ['user', 'password']);
          return { user: c.string(b.user, [...p, 'basic', 'user']), password: c.secret(b.password, [...p, 'basic', 'password']) };
        });
      }
      const query: Record<string, SecretRef> = {};
      if (o.query !== undefined) {
        c.guard(() => {
          for (const [k, qv] of Object.entries(c.object(o.query, [...p, 'query']))) query[k] = c.secret(qv, [...p, 'query', k]);
        });
      }
      return {
        url,
        headers,
        bearer: o.bearer === undefined ? undefined : c.guard(() => c.secret(o.bearer, [...p, 'bearer'])),
        basic,
        query,
        verify,
        ca,
      };
    }
    case 'mcp':
      return o.command === undefined && o.url !== undefined ? checkMcpHttpUpstream(c, o, p) : checkMcpUpstream(c, o, p);
  }
}

// --- MCP (issue 15) ---
function checkMcpUpstream(c: Checker, o: Record<string, unknown>, p: ConfigPath): McpUpstream {
  c.keys(o, p, ['command', 'env', 'cwd', 'via']);
  if (!Array.isArray(o.command) || o.command.length === 0) c.fail([...p, 'command'], `expected the server's command line as a list [CMD, ARGS…]${describe(o.command)}`);
  const command = (o.command as unknown[]).map((x, j) => (typeof x === 'number' ? String(x) : c.string(x, [...p, 'command', j], 'a command or argument')));
  const up: McpUpstream = { command };
  if (o.env !== undefined) {
    up.env = {};
    for (const [k, v] of Object.entries(c.object(o.env, [...p, 'env'], 'a mapping of variable names to { env: … } or { file: … }'))) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) c.fail([...p, 'env', k], `expected an environment variable name, got "${k}"`);
      up.env[k] = c.secret(v, [...p, 'env', k]);
    }
  }
  if (o.cwd !== undefined) {
    const dir = c.string(o.cwd, [...p, 'cwd'], 'a directory');
    const base = c.file.startsWith('(') ? process.cwd() : path.dirname(c.file);
    up.cwd = dir.startsWith('~/') ? path.join(os.homedir(), dir.slice(2)) : path.resolve(base, dir);
  }
  if (o.via !== undefined) {
    if (!Array.isArray(o.via)) c.fail([...p, 'via'], `expected a list of postgres connection names${describe(o.via)}`);
    up.via = (o.via as unknown[]).map((x, j) => c.string(x, [...p, 'via', j], 'a postgres connection name'));
  }
  return up;
}

/** The upstream's variables (`env:NAME`) among a connection's resolved secrets. */
export function mcpEnvSecrets(secrets: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secrets)) if (k.startsWith('env:')) out[k.slice(4)] = v;
  return out;
}
// --- end MCP ---

// --- MCP over HTTP (issue 15) ---
/** MCP over HTTP: `upstream: { url, headers, bearer }`, served on the connection's listen address. */
function checkMcpHttpUpstream(c: Checker, o: Record<string, unknown>, p: Array<string | number>): McpHttpUpstream {
  c.keys(o, p, ['url', 'headers', 'bearer', 'verify', 'ca']);
  const url = c.string(o.url, [...p, 'url'], "the MCP server's http(s) URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    c.fail([...p, 'url'], `expected an http(s) URL, got "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') c.fail([...p, 'url'], `expected an http(s) URL, got "${url}"`);
  if (parsed.username || parsed.password) c.fail([...p, 'url'], 'credentials do not belong in the URL: use headers or bearer with { env: … }');
  const headers: Record<string, SecretRef | string> = {};
  if (o.headers !== undefined) {
    for (const [k, hv] of Object.entries(c.object(o.headers, [...p, 'headers']))) {
      if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) c.fail([...p, 'headers', k], `"${k}" is not a valid header name`);
      if (typeof hv === 'string' && /^(authorization|proxy-authorization|x-api-key|api-key|cookie)$/i.test(k)) c.secret(hv, [...p, 'headers', k]);
      headers[k] = typeof hv === 'string' ? hv : c.secret(hv, [...p, 'headers', k]);
    }
  }
  return {
    url,
    headers,
    bearer: o.bearer === undefined ? undefined : c.secret(o.bearer, [...p, 'bearer']),
    verify: o.verify === undefined ? undefined : c.bool(o.verify, [...p, 'verify']),
    ca: o.ca === undefined ? undefined : c.string(o.ca, [...p, 'ca'], 'a CA file path'),
  };
}
// --- end MCP over HTTP ---

/** `{ file: PATH }` only: certificates are files, never environment values. */
function fileRef(c: Checker, v: unknown, p: ConfigPath): { file: string } {
  const o = c.object(v, p, '{ file: PATH }');
  c.keys(o, p, ['file']);
  return { file: c.string(o.file, [...p, 'file'], 'a file path') };
}

function checkKubernetesUpstream(c: Checker, o: Record<string, unknown>, p: ConfigPath): KubernetesUpstream {
  // `url` was this key's name before `server`; configs written then still load
  c.keys(o, p, ['server', 'url', 'token', 'ca', 'clientCert', 'clientKey', 'kubeconfig', 'context', 'verify']);
  const verify = o.verify === undefined ? undefined : c.bool(o.verify, [...p, 'verify']);
  if (o.kubeconfig !== undefined) {
    for (const k of ['server', 'url', 'token', 'ca', 'clientCert', 'clientKey']) {
      if (o[k] !== undefined) c.fail([...p, k], `${k} comes from the kubeconfig: use either kubeconfig (+ context) or server (+ token, ca, clientCert, clientKey)`);
    }
    const up: KubernetesUpstream = { kubeconfig: c.string(o.kubeconfig, [...p, 'kubeconfig'], 'a kubeconfig file path') };
    if (o.context !== undefined) up.context = c.string(o.context, [...p, 'context'], 'a context name');
    if (verify !== undefined) up.verify = verify;
    return up;
  }
  if (o.context !== undefined) c.fail([...p, 'context'], 'context needs kubeconfig: PATH');
  const key = o.server !== undefined || o.url === undefined ? 'server' : 'url';
  const server = c.string(o[key], [...p, key], 'the API server URL (https://host:6443), or kubeconfig: PATH');
  let parsed: URL;
  try {
    parsed = new URL(server);
  } catch {
    c.fail([...p, key], `expected an https URL, got "${server}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') c.fail([...p, key], `expected an https URL, got "${server}"`);
  if (parsed.username || parsed.password) c.fail([...p, key], 'credentials do not belong in the URL: use token or clientCert/clientKey');
  if ((o.clientCert === undefined) !== (o.clientKey === undefined)) c.fail([...p, o.clientCert === undefined ? 'clientCert' : 'clientKey'], 'clientCert and clientKey go together');
  const up: KubernetesUpstream = { server };
  if (o.token !== undefined) up.token = c.secret(o.token, [...p, 'token']);
  if (o.ca !== undefined) up.ca = fileRef(c, o.ca, [...p, 'ca']);
  if (o.clientCert !== undefined) up.clientCert = fileRef(c, o.clientCert, [...p, 'clientCert']);
  if (o.clientKey !== undefined) up.clientKey = c.secret(o.clientKey, [...p, 'clientKey']);
  if (verify !== undefined) up.verify = verify;
  return up;
}

const CONNECTION_KEYS = ['name', 'protocol', 'listen', 'upstream', 'identities', 'mask', 'llm', 'options', 'guardrails', 'retention'];

const RETENTION_RE = /^([1-9]\d{0,5})([hdw])$/;
const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** A retention period (`36h`, `30d`, `8w`) in milliseconds; null when it is not one. */
export function retentionMs(spec: string): number | null {
  const m = RETENTION_RE.exec(spec);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : null;
}

function parseRetention(c: Checker, v: unknown, p: Array<string | number>): string {
  if (typeof v !== 'string' || retentionMs(v.trim()) === null) c.fail(p, `expected a period like 30d (a whole number of h, d or w)${describe(v)}`);
  return (v as string).trim();
}

function checkConnection(c: Checker, v: unknown, i: number, seen: Map<string, string>): ConnectionConfig {
  const p: Array<string | number> = ['connections', i];
  const o = c.object(v, p);
  c.guard(() => c.keys(o, p, CONNECTION_KEYS));
  const name = c.guard(() => {
    const n = c.string(o.name, [...p, 'name'], 'a connection name');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(n)) c.fail([...p, 'name'], `expected letters, digits, '.', '_' or '-', got "${n}"`);
    if (seen.has(`name:${n}`)) c.fail([...p, 'name'], `duplicate connection name "${n}"`);
    seen.set(`name:${n}`, n);
    return n;
  });
  const protocol = c.guard(() => c.oneOf(o.protocol, [...p, 'protocol'], PROTOCOLS));
  // an MCP stdio server is reached through `flightlog mcp`: its pipes connect to a free loopback port
  const mcpStdio = protocol === 'mcp' && o.upstream !== null && typeof o.upstream === 'object' && 'command' in o.upstream;
  const listen = c.guard(() => {
    const l = mcpStdio && o.listen === undefined ? { host: '127.0.0.1', port: 0 } : parseListen(c, o.listen, [...p, 'listen']);
    if (mcpStdio && !/^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(l.host)) c.fail([...p, 'listen'], 'an MCP stdio connection listens on loopback only (leave listen out)');
    if (l.port !== 0) {
      const key = `listen:${l.host}:${l.port}`;
      if (seen.has(key)) c.fail([...p, 'listen'], `${l.host}:${l.port} is already used by connection "${seen.get(key)}"`);
      seen.set(key, name);
    }
    return l;
  });
  // an unknown protocol leaves nothing to check the upstream against
  const upstream = protocol === undefined ? (undefined as unknown as Upstream) : c.guard(() => checkUpstream(c, protocol, o.upstream, [...p, 'upstream']));
  const identities = c.guard(() => {
    if (!Array.isArray(o.identities) || o.identities.length === 0) c.fail([...p, 'identities'], `expected a list of identity names that may use this connection${describe(o.identities)}`);
    return (o.identities as unknown[]).map((x, j) => c.string(x, [...p, 'identities', j], 'an identity name'));
  });
  const mask = o.mask === undefined ? 'record' : c.guard(() => c.oneOf(o.mask, [...p, 'mask'], ['record', 'live'] as const));
  let llm: ConnectionConfig['llm'];
  if (o.llm !== undefined) {
    llm = c.guard(() => {
      if (protocol !== 'http') c.fail([...p, 'llm'], 'llm is only valid on protocol: http connections');
      return c.oneOf(o.llm, [...p, 'llm'], ['anthropic', 'openai'] as const);
    });
  }
  const options = o.options === undefined ? {} : c.guard(() => c.object(o.options, [...p, 'options']));
  const conn: ConnectionConfig = { name, protocol, listen, upstream, identities, mask, llm, options };
  if (o.guardrails !== undefined) conn.guardrails = c.guard(() => checkConnectionGuardrails(c, o.guardrails, [...p, 'guardrails']));
  if (o.retention !== undefined) conn.retention = c.guard(() => parseRetention(c, o.retention, [...p, 'retention']));
  return conn;
}

/** Validates a parsed document; `file` names it in errors. */
export function validateConfig(raw: unknown, file: string, doc: Document | null = null, lines: LineCounter | null = null, issues: ConfigIssue[] | null = null): FlightlogConfig {
  const c = new Checker(file, doc, lines, issues);
  const root = raw === null || raw === undefined ? {} : c.object(raw, [], 'a mapping with connections:');
  c.guard(() => c.keys(root, [], ['connections', 'recording', 'controlApi', 'guardrails', 'retention']));
  const connections: ConnectionConfig[] = [];
  if (root.connections !== undefined && root.connections !== null) {
    if (!Array.isArray(root.connections)) c.fail(['connections'], `expected a list of connections${describe(root.connections)}`);
    const seen = new Map<string, string>();
    (root.connections as unknown[]).forEach((v, i) => connections.push(c.guard(() => checkConnection(c, v, i, seen))));
  }
  const recording = { ...DEFAULT_RECORDING };
  if (root.recording !== undefined) {
    const r = c.object(root.recording, ['recording']);
    c.keys(r, ['recording'], ['headRows', 'payloadHead']);
    for (const k of ['headRows', 'payloadHead'] as const) {
      if (r[k] === undefined) continue;
      const n = r[k];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1e9) c.fail(['recording', k], `expected a whole number ≥ 0${describe(n)}`);
      recording[k] = n as number;
    }
  }
  const controlApi = { host: '127.0.0.1', port: 0 };
  if (root.controlApi !== undefined) {
    const a = c.object(root.controlApi, ['controlApi']);
    c.keys(a, ['controlApi'], ['listen']);
    if (a.listen !== undefined) Object.assign(controlApi, parseListen(c, a.listen, ['controlApi', 'listen']));
    if (!/^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(controlApi.host)) c.fail(['controlApi', 'listen'], 'the control API listens on loopback only (127.0.0.1)');
  }
  // --- MCP via (issue 15): an MCP server's database traffic goes through a postgres connection of this file ---
  connections.forEach((conn, i) => {
    const via = conn.protocol === 'mcp' && 'command' in conn.upstream ? (conn.upstream as McpUpstream).via ?? [] : [];
    via.forEach((name, j) => {
      const target = connections.find((x) => x.name === name);
      if (!target || target.protocol !== 'postgres') c.fail(['connections', i, 'upstream', 'via', j], `"${name}" is not a postgres connection of this file`);
    });
  });
  // --- end MCP via ---
  const config: FlightlogConfig = { file, connections, recording, controlApi, guardrails: checkGuardrails(c, root.guardrails) };
  if (root.retention !== undefined) config.retention = parseRetention(c, root.retention, ['retention']);
  return config;
}

/**
 * Every refused value of a config at once, each with its path (empty when it is valid), where
 * validateConfig stops at the first: what a form needs to mark all its fields in one go.
 */
export function configIssues(raw: unknown, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  try {
    validateConfig(raw, file, null, null, issues);
  } catch (err) {
    // a refusal outside any field (the document itself) ends the walk; it is noted already
    if (err instanceof SkipField) return issues;
    if (!(err instanceof ConfigError)) throw err;
    issues.push({ path: [], docPath: err.docPath, expected: err.expected });
  }
  return issues;
}

/** Reads, parses and validates flightlog.yaml. */
export function loadConfig(file: string): FlightlogConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FlightlogError('E_CONFIG_READ', code === 'ENOENT' ? `config file not found: ${file}` : `cannot read config ${file}: ${code ?? (err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(file, '', `not valid YAML: ${e.message.split('\n')[0]}`, line);
  }
  if (!isMap(doc.contents) && doc.contents !== null && !isSeq(doc.contents)) {
    // scalars fall through to validateConfig's "expected a mapping"
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // toJS() resolves aliases: an alias to no anchor (`<<: *a`) or too many of them throws here.
    throw new ConfigError(file, '', `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateConfig(raw, file, doc, lines);
}

/**
 * An `{ env: NAME }` secret the gateway's environment lacks: most often the gateway was started
 * before NAME was exported. The message says both ways forward; `field` lets a form place it.
 */
export class MissingEnvSecretError extends FlightlogError {
  constructor(
    readonly connection: string,
    /** `upstream.password`, `upstream.headers.x-api-key`… */
    readonly field: string,
    readonly variable: string,
  ) {
    super(
      'E_SECRET',
      `connection "${connection}": ${field} reads environment variable ${variable}, which is not set: export it and start the gateway again, or store the value in Flightlog (Settings, or printf %s "$VALUE" | flightlog secret add ${variable} --store) and reference the file it names`,
    );
    this.name = 'MissingEnvSecretError';
  }
}

/** Reads every secret a connection references, from the environment or a file. Never logs values. */
export function resolveSecrets(conn: ConnectionConfig, env: NodeJS.ProcessEnv, configFile: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  const base = configFile ? path.dirname(configFile) : process.cwd();
  const read = (ref: SecretRef, where: string): string => {
    if ('env' in ref) {
      const v = env[ref.env];
      if (v === undefined || v === '') throw new MissingEnvSecretError(conn.name, where, ref.env);
      return v;
    }
    const file = ref.file.startsWith('~/') ? path.join(os.homedir(), ref.file.slice(2)) : path.resolve(base, ref.file);
    try {
      return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new FlightlogError('E_SECRET', `connection "${conn.name}": ${where} reads ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  };
  const u = conn.upstream as unknown as Record<string, unknown>;
  for (const key of ['password', 'privateKey', 'bearer', 'token', 'clientKey'] as const) {
    if (u[key] && typeof u[key] === 'object') out[key] = read(u[key] as SecretRef, `upstream.${key}`);
  }
  if (u.basic && typeof u.basic === 'object') out['basic.password'] = read((u.basic as { password: SecretRef }).password, 'upstream.basic.password');
  for (const [k, v] of Object.entries((u.headers as Record<string, SecretRef | string> | undefined) ?? {})) {
    if (typeof v === 'object') out[`header:${k}`] = read(v, `upstream.headers.${k}`);
  }
  for (const [k, v] of Object.entries((u.query as Record<string, SecretRef> | undefined) ?? {})) out[`query:${k}`] = read(v, `upstream.query.${k}`);
  if (conn.protocol === 'mcp') for (const [k, v] of Object.entries((u.env as Record<string, SecretRef> | undefined) ?? {})) out[`env:${k}`] = read(v, `upstream.env.${k}`);
  return out;
}

/** The retention that applies to a connection's sessions: its own, else the top-level default; null keeps them. */
export function retentionPolicy(config: FlightlogConfig): (connection: string) => { spec: string; ms: number } | null {
  const own = new Map(config.connections.map((c) => [c.name, c.retention]));
  return (connection) => {
    const spec = own.get(connection) ?? config.retention;
    const ms = spec ? retentionMs(spec) : null;
    return spec && ms !== null ? { spec, ms } : null;
  };
}
