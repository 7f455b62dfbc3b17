/**
 * The API server a kubernetes connection forwards to, and how the gateway logs in to it: from the
 * connection's own fields (server, token, ca, clientCert, clientKey) or from a kubeconfig file and
 * one of its contexts. Resolved once at start; the agent never sees any of it.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubernetesUpstream } from '../common/config-schema';

export class KubeConfigError extends Error {
  readonly code = 'KUBE_UPSTREAM_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export interface KubeTarget {
  url: URL;
  /** host:port, for messages */
  label: string;
  isHttps: boolean;
  agent: http.Agent;
  /** TLS options for the upgrade connections (exec, port-forward), which bypass the agent */
  tls: https.AgentOptions;
  /** `Bearer …`, when the login is a token */
  authorization: string | null;
  /** every credential value, to be masked wherever it shows up */
  secretValues: string[];
}

function expand(file: string, base: string): string {
  if (file.startsWith('~/')) return path.join(os.homedir(), file.slice(2));
  return path.resolve(base, file);
}

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new KubeConfigError(`cannot read the upstream ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

interface Login {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
}

type Named<T> = Array<{ name?: unknown } & T>;

/** The server and credentials of one kubeconfig context. */
export function loginFromKubeconfig(file: string, context: string | undefined): Login {
  const text = readFile(file, 'kubeconfig', ).toString('utf8');
  let doc: {
    'current-context'?: unknown;
    contexts?: Named<{ context?: { cluster?: unknown; user?: unknown } }>;
    clusters?: Named<{ cluster?: Record<string, unknown> }>;
    users?: Named<{ user?: Record<string, unknown> }>;
  };
  try {
    doc = (parseYaml(text) ?? {}) as typeof doc;
  } catch {
    throw new KubeConfigError(`kubeconfig ${file} is not valid YAML`);
  }
  const base = path.dirname(file);
  const name = context ?? (typeof doc['current-context'] === 'string' ? doc['current-context'] : undefined);
  if (!name) throw new KubeConfigError(`kubeconfig ${file} has no current-context: set upstream.context`);
  const ctx = (doc.contexts ?? []).find((c) => c?.name === name)?.context;
  if (!ctx) throw new KubeConfigError(`kubeconfig ${file} has no context "${name}"`);
  const cluster = (doc.clusters ?? []).find((c) => c?.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw new KubeConfigError(`kubeconfig ${file}: context "${name}" names cluster "${String(ctx.cluster)}", which has no server`);
  const user = (doc.users ?? []).find((u) => u?.name === ctx.user)?.user ?? {};
  const login: Login = { server: cluster.server };
  const data = (v: unknown): Buffer | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64') : undefined);
  const fileOf = (v: unknown, what: string): Buffer | undefined => (typeof v === 'string' ? readFile(expand(v, base), what) : undefined);
  login.ca = data(cluster['certificate-authority-data']) ?? fileOf(cluster['certificate-authority'], 'CA file');
  login.insecure = cluster['insecure-skip-tls-verify'] === true;
  login.cert = data(user['client-certificate-data']) ?? fileOf(user['client-certificate'], 'client certificate');
  login.key = data(user['client-key-data']) ?? fileOf(user['client-key'], 'client key');
  if (typeof user.token === 'string') login.token = user.token;
  else if (typeof user.tokenFile === 'string') login.token = readFile(expand(user.tokenFile, base), 'token file').toString('utf8').trim();
  if (user.exec || user['auth-provider']) {
    throw new KubeConfigError(`kubeconfig ${file}: user "${String(ctx.user)}" logs in with an exec plugin or auth provider; the gateway needs a token or a client certificate`);
  }
  return login;
}

/**
 * Resolves the upstream. `secrets` holds the values gateway.ts read from the config's references
 * (`token`, `clientKey`); `configFile` anchors relative paths.
 */
export function resolveKubeTarget(up: KubernetesUpstream, secrets: Record<string, string>, configFile: string | null): KubeTarget {
  const base = configFile ? path.dirname(configFile) : process.cwd();
  let login: Login;
  if (up.kubeconfig) {
    login = loginFromKubeconfig(expand(up.kubeconfig, base), up.context);
  } else {
    const server = up.server ?? (up as { url?: string }).url ?? '';
    login = { server };
    if (up.ca) login.ca = readFile(expand(up.ca.file, base), 'CA file');
    if (up.clientCert) login.cert = readFile(expand(up.clientCert.file, base), 'client certificate');
    if (up.clientKey) login.key = Buffer.from(secrets.clientKey ?? '', 'utf8');
    if (up.token) login.token = secrets.token;
  }
  let url: URL;
  try {
    url = new URL(login.server);
  } catch {
    throw new KubeConfigError(`upstream server "${login.server}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KubeConfigError(`upstream server must be https://, got ${url.protocol}`);
  const isHttps = url.protocol === 'https:';
  const verify = up.verify !== false && !login.insecure;
  const tls: https.AgentOptions = { rejectUnauthorized: verify };
  if (login.ca) tls.ca = login.ca;
  if (login.cert) tls.cert = login.cert;
  if (login.key) tls.key = login.key;
  const agentOpts = { keepAlive: true, maxSockets: 256, ...tls };
  const agent = isHttps ? new https.Agent(agentOpts) : new http.Agent({ keepAlive: true, maxSockets: 256 });
  const secretValues: string[] = [];
  if (login.token) secretValues.push(login.token);
  if (login.key) secretValues.push(login.key.toString('utf8'));
  return {
    url,
    label: url.host,
    isHttps,
    agent,
    tls,
    authorization: login.token ? `Bearer ${login.token}` : null,
    secretValues,
  };
}
