import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlightlogError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import type { RunStartResult } from '../common/api-types';
import type { Io } from './main';
import { agentKubeconfig, type KubeconfigCluster } from '../kubernetes/kubeconfig';

/** The certificate the gateway's TLS listeners present (kubernetes, postgres); null before one was made. */
function readGatewayCa(dataDir: string): string | null {
  try {
    return fs.readFileSync(path.join(dataDir, 'postgres-tls', 'gateway-cert.pem'), 'utf8');
  } catch {
    return null;
  }
}

interface ControlInfo {
  url: string;
  token: string;
}

/** Finds the running gateway of a data dir through control.json and the control token. */
export function findRunningGateway(dataDir: string): ControlInfo {
  const file = path.join(dataDir, 'control.json');
  let info: { url?: unknown };
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8')) as { url?: unknown };
  } catch {
    throw new FlightlogError('E_NO_GATEWAY', `no gateway is running on ${dataDir}: start one with "flightlog gateway --config flightlog.yaml" (or flightlog start)`);
  }
  if (typeof info.url !== 'string') throw new FlightlogError('E_NO_GATEWAY', `${file} is damaged: restart the gateway`);
  return { url: info.url, token: fs.readFileSync(path.join(dataDir, 'control-token'), 'utf8').trim() };
}

async function call<T>(gw: ControlInfo, method: string, route: string, body: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(gw.url + route, { method, headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch {
    throw new FlightlogError('E_NO_GATEWAY', `the gateway at ${gw.url} does not answer: is it still running?`);
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { message: string } };
  if (!res.ok) throw new FlightlogError('E_GATEWAY', json.error?.message ?? `gateway answered HTTP ${res.status}`);
  return json as T;
}

function hostPort(address: string): { host: string; port: string } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: address.slice(i + 1) };
}

/**
 * The agent's environment: every client it may use points at the gateway, with the run's own
 * token as the credential. Files (ssh config, askpass, kubeconfig) go in a private temp dir.
 */
export function agentEnvironment(run: RunStartResult, identity: string, dir: string, gatewayCaPem: string | null = null): Record<string, string> {
  // FLIGHTLOG_TOKEN: what `flightlog mcp` (an MCP server the agent starts) authenticates with
  const env: Record<string, string> = { FLIGHTLOG_RUN_ID: run.runId, FLIGHTLOG_IDENTITY: identity, FLIGHTLOG_TOKEN: run.token };
  const sshHosts: string[] = [];
  const kubeClusters: KubeconfigCluster[] = [];
  for (const l of run.listeners) {
    if (!l.address || !l.identities.includes(identity)) continue;
    const { host, port } = hostPort(l.address);
    const upper = l.connection.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
    switch (l.protocol) {
      case 'postgres':
        if (!env.PGHOST) Object.assign(env, { PGHOST: host, PGPORT: port, PGUSER: identity, PGPASSWORD: run.token });
        env[`FLIGHTLOG_PG_${upper}`] = `postgresql://${encodeURIComponent(identity)}@${host}:${port}`;
        break;
      case 'http':
        env[`FLIGHTLOG_HTTP_${upper}_URL`] = `http://${host}:${port}`;
        if (l.llm === 'anthropic') Object.assign(env, { ANTHROPIC_BASE_URL: `http://${host}:${port}`, ANTHROPIC_API_KEY: run.token });
        if (l.llm === 'openai') Object.assign(env, { OPENAI_BASE_URL: `http://${host}:${port}/v1`, OPENAI_API_KEY: run.token });
        break;
      case 'ssh':
        sshHosts.push(`Host ${l.connection}\n  HostName ${host}\n  Port ${port}\n  User ${identity}\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile ${path.join(dir, 'known_hosts')}\n  PreferredAuthentications password,keyboard-interactive\n`);
        break;
      case 'kubernetes':
        kubeClusters.push({ name: l.connection, address: l.address });
        break;
    }
  }
  if (kubeClusters.length) {
    // HTTPS to the gateway, trusting its own certificate; the run's token as the bearer token
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, agentKubeconfig(kubeClusters, identity, run.token, gatewayCaPem), { mode: 0o600 });
    env.KUBECONFIG = kubeconfig;
  }
  if (sshHosts.length) {
    const sshConfig = path.join(dir, 'ssh_config');
    fs.writeFileSync(sshConfig, sshHosts.join('\n'), { mode: 0o600 });
    // OpenSSH reads the password from SSH_ASKPASS when forced: the token never appears in argv.
    const askpass = path.join(dir, 'askpass');
    fs.writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' "$FLIGHTLOG_TOKEN"\n`, { mode: 0o700 });
    Object.assign(env, {
      FLIGHTLOG_SSH_CONFIG: sshConfig,
      GIT_SSH_COMMAND: `ssh -F ${sshConfig}`,
      SSH_ASKPASS: askpass,
      SSH_ASKPASS_REQUIRE: 'force',
      FLIGHTLOG_TOKEN: run.token,
    });
  }
  return env;
}

/** `flightlog run [--identity NAME] -- CMD …`: the agent runs with its traffic routed through the gateway. */
export async function runRunCommand(opts: { identity?: string; dataDir?: string; argv: string[] }, io: Io): Promise<number> {
  if (opts.argv.length === 0) throw new FlightlogError('E_USAGE', 'run needs a command after -- (usage: flightlog run [--identity NAME] -- CMD …)', 2);
  const dataDir = resolveDataDir(opts.dataDir, io.env);
  const gw = findRunningGateway(dataDir);
  const identity = opts.identity ?? io.env.FLIGHTLOG_IDENTITY ?? 'agent';
  const run = await call<RunStartResult>(gw, 'POST', '/api/runs', { identity, argv: opts.argv, pid: process.pid });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-run-'));
  // FLIGHTLOG_HOME: `flightlog mcp`, started by the agent, finds this gateway whatever --data-dir said
  const env = { ...io.env, FLIGHTLOG_HOME: dataDir, ...agentEnvironment(run, identity, dir, readGatewayCa(dataDir)) };
  io.stderr.write(`flightlog: run ${run.runId} as ${identity}\n`);
  const child = spawn(opts.argv[0], opts.argv.slice(1), { stdio: 'inherit', env });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const exitCode = await new Promise<number>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      io.stderr.write(`flightlog: cannot start ${opts.argv[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.code ?? err.message}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  fs.rmSync(dir, { recursive: true, force: true });
  await call(gw, 'POST', `/api/runs/${encodeURIComponent(run.runId)}/end`, { exitCode }).catch((err: Error) => io.stderr.write(`flightlog: ${err.message}\n`));
  return exitCode;
}
