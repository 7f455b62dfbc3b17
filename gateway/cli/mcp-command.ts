/**
 * `flightlog mcp --connection NAME`: what an agent's MCP config runs instead of the server. A thin
 * pipe: the agent's stdin goes to the running gateway byte for byte and the gateway's relay of the
 * server comes back on stdout; the gateway starts the server and records the session. It fails
 * closed with one line on stderr (no gateway, unknown connection, bad or revoked token).
 *
 * `flightlog mcp config NAME [--agent claude|cursor|vscode]`: the JSON to paste into an agent's config.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FlightlogError, UsageError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { storePath } from '../store/db';
import { connectionConfigText } from '../store/connections';
import { announceFile, CONTROL, HELLO_VERSION, type ControlMessage, type PipeHello } from '../mcp/stdio-listener';
import { parse, type Io } from './main';

const USAGE = 'flightlog mcp --connection NAME [--identity NAME] | flightlog mcp config NAME [--agent claude|cursor|vscode] [--identity NAME]';

export async function runMcpCommand(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'config') return configCommand(argv.slice(1), io);
  const { flags } = parse(argv, { connection: { type: 'string' }, identity: { type: 'string' } }, 0, USAGE);
  const connection = flags.connection as string | undefined;
  if (!connection) throw new UsageError(`mcp needs --connection NAME (usage: ${USAGE})`);
  const identity = (flags.identity as string | undefined) ?? io.env.FLIGHTLOG_IDENTITY;
  const token = io.env.FLIGHTLOG_TOKEN;
  if (!token) throw new FlightlogError('E_MCP_TOKEN', 'no Flightlog token: run the agent under "flightlog run", or set FLIGHTLOG_TOKEN to a token from "flightlog identity add"');
  if (!identity) throw new FlightlogError('E_MCP_IDENTITY', 'no identity: pass --identity NAME or set FLIGHTLOG_IDENTITY (flightlog run sets both)');
  const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
  const http = httpMcpConnection(dataDir, connection);
  if (http) throw new FlightlogError('E_MCP_HTTP', `connection "${connection}" is an MCP server over HTTP, not a pipe: point the agent at ${http.url} (flightlog mcp config ${connection} prints the snippet)`);
  const address = gatewayAddress(dataDir, connection);
  return pipe(address, { flightlog: 'mcp-pipe', version: HELLO_VERSION, connection, identity, token, pid: process.pid }, io);
}

/**
 * An MCP connection over HTTP as the gateway last started it (its row in the store): the URL an
 * agent uses is the gateway's listen address (the bound one while a gateway runs) and the server's
 * own path. Null for anything else, or when there is no store yet.
 */
function httpMcpConnection(dataDir: string, name: string): { url: string } | null {
  const file = storePath(dataDir);
  if (!fs.existsSync(file)) return null;
  let config: { protocol?: string; listen?: { host?: string; port?: number }; upstream?: { url?: string } };
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const text = connectionConfigText(db, name);
      if (text === undefined) return null;
      config = JSON.parse(text) as typeof config;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
  if (config.protocol !== 'mcp' || typeof config.upstream?.url !== 'string') return null;
  let address = `${config.listen?.host ?? '127.0.0.1'}:${config.listen?.port ?? 0}`;
  const bound = boundAddress(dataDir, name);
  if (bound) address = bound;
  const i = address.lastIndexOf(':');
  let host = address.slice(0, i);
  if (host === '0.0.0.0' || host === '::' || host === '') host = '127.0.0.1';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  let upstreamPath = '/';
  try {
    upstreamPath = new URL(config.upstream.url).pathname;
  } catch {
    // the gateway serves the MCP endpoint at / too
  }
  return { url: `http://${host}:${address.slice(i + 1)}${upstreamPath}` };
}

/** The address a running gateway bound for a connection (listen port 0), from its status file. */
function boundAddress(dataDir: string, name: string): string | null {
  try {
    const status = JSON.parse(fs.readFileSync(path.join(dataDir, 'mcp', `${name}.http.json`), 'utf8')) as { address?: unknown };
    return typeof status.address === 'string' ? status.address : null;
  } catch {
    return null;
  }
}

/** The loopback address the running gateway announced for this connection. */
function gatewayAddress(dataDir: string, connection: string): { host: string; port: number } {
  if (!fs.existsSync(path.join(dataDir, 'control.json'))) {
    throw new FlightlogError('E_NO_GATEWAY', `no gateway is running on ${dataDir}: start one with "flightlog gateway --config flightlog.yaml" (or flightlog ui)`);
  }
  let info: { address?: unknown };
  try {
    info = JSON.parse(fs.readFileSync(announceFile(dataDir, connection), 'utf8')) as { address?: unknown };
  } catch {
    throw new FlightlogError('E_MCP_CONNECTION', `the running gateway has no MCP stdio connection "${connection}" (protocol: mcp with upstream.command in flightlog.yaml)`);
  }
  const m = typeof info.address === 'string' ? /^(.*):(\d+)$/.exec(info.address) : null;
  if (!m) throw new FlightlogError('E_MCP_CONNECTION', `${announceFile(dataDir, connection)} is damaged: restart the gateway`);
  return { host: m[1], port: Number(m[2]) };
}

function pipe(address: { host: string; port: number }, hello: PipeHello, io: Io): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(address.port, address.host);
    socket.setNoDelay(true);
    let accepted = false;
    let stdinEnded = false;
    let result: number | null = null;
    let control: Buffer[] | null = null;
    const finish = (code: number, line?: string): void => {
      if (result !== null) return;
      result = code;
      if (line) io.stderr.write(`flightlog: ${line}\n`);
      io.stdin.pause();
      socket.destroy();
      resolve(code);
    };
    const onControl = (text: string): void => {
      let m: ControlMessage;
      try {
        m = JSON.parse(text) as ControlMessage;
      } catch {
        return finish(1, 'the gateway sent something this pipe does not understand (is it the same version?)');
      }
      if ('ok' in m) {
        if (!m.ok) return finish(1, m.message);
        accepted = true;
        io.stdin.on('data', (c: Buffer) => {
          if (!socket.write(c)) io.stdin.pause();
        });
        socket.on('drain', () => io.stdin.resume());
        io.stdin.once('end', () => {
          stdinEnded = true;
          socket.end();
        });
        io.stdin.resume();
      } else if ('stderr' in m) io.stderr.write(m.stderr);
      else if ('end' in m) finish(1, m.end.replace(/^flightlog: /, ''));
    };
    const out = (b: Buffer): void => {
      if (b.length && !io.stdout.write(b)) {
        socket.pause();
        io.stdout.once('drain', () => socket.resume());
      }
    };
    socket.on('data', (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length && result === null) {
        if (control) {
          const nl = chunk.indexOf(10, i);
          if (nl === -1) {
            control.push(chunk.subarray(i));
            return;
          }
          control.push(chunk.subarray(i, nl));
          const text = Buffer.concat(control).toString('utf8');
          control = null;
          i = nl + 1;
          onControl(text);
          continue;
        }
        const c = chunk.indexOf(CONTROL, i);
        if (c === -1) return out(chunk.subarray(i));
        out(chunk.subarray(i, c));
        control = [];
        i = c + 1;
      }
    });
    socket.once('connect', () => socket.write(JSON.stringify(hello) + '\n'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (!accepted) finish(1, `the gateway does not answer on ${address.host}:${address.port} (${err.code ?? err.message}): is it still running?`);
      else finish(1, `lost the connection to the gateway (${err.code ?? err.message})`);
    });
    socket.once('close', () => {
      if (!accepted) finish(1, 'the gateway closed the connection before accepting it');
      else finish(stdinEnded ? 0 : 1, stdinEnded ? undefined : 'the gateway closed the MCP connection');
    });
  });
}

function configCommand(argv: string[], io: Io): number {
  const usage = 'flightlog mcp config NAME [--agent claude|cursor|vscode] [--identity NAME]';
  const { flags, positionals } = parse(argv, { agent: { type: 'string' }, identity: { type: 'string' } }, 1, usage);
  const name = positionals[0];
  if (!name) throw new UsageError(`mcp config needs a connection NAME (usage: ${usage})`);
  const agent = flags.agent as string | undefined;
  if (agent !== undefined && !['claude', 'cursor', 'vscode'].includes(agent)) throw new UsageError(`--agent expects claude, cursor or vscode, got "${agent}"`);
  const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
  const http = httpMcpConnection(dataDir, name);
  if (http) return httpConfig(name, http.url, agent, io);
  const args = ['mcp', '--connection', name];
  if (flags.identity) args.push('--identity', flags.identity as string);
  if (flags['data-dir']) args.push('--data-dir', path.resolve(flags['data-dir'] as string));
  const server = { command: 'flightlog', args };
  const snippets: Record<string, { file: string; json: unknown }> = {
    claude: { file: '.mcp.json (project) or: claude mcp add-json NAME \'…\'', json: { mcpServers: { [name]: server } } },
    cursor: { file: '.cursor/mcp.json or ~/.cursor/mcp.json', json: { mcpServers: { [name]: server } } },
    vscode: { file: '.vscode/mcp.json', json: { servers: { [name]: { type: 'stdio', ...server } } } },
  };
  const chosen = agent ? [agent] : Object.keys(snippets);
  if (agent) {
    io.stdout.write(JSON.stringify(snippets[agent].json, null, 2) + '\n');
    return 0;
  }
  for (const a of chosen) io.stdout.write(`// ${a === 'claude' ? 'Claude Code' : a === 'cursor' ? 'Cursor' : 'VS Code'}: ${snippets[a].file}\n${JSON.stringify(snippets[a].json, null, 2)}\n\n`);
  io.stdout.write('// The pipe authenticates with FLIGHTLOG_TOKEN and FLIGHTLOG_IDENTITY, which "flightlog run -- AGENT" sets.\n');
  return 0;
}

/**
 * The snippets for an MCP connection over HTTP: the agent talks to the gateway's URL with its
 * Flightlog token as a bearer. No token is printed: each agent's own variable syntax reads it
 * (FLIGHTLOG_TOKEN, set by `flightlog run`; VS Code asks for it once and keeps it as a secret).
 */
function httpConfig(name: string, url: string, agent: string | undefined, io: Io): number {
  const server = (token: string) => ({ type: 'http', url, headers: { Authorization: `Bearer ${token}` } });
  const snippets: Record<string, { file: string; json: unknown }> = {
    claude: { file: `.mcp.json (project) or: claude mcp add --transport http ${name} ${url} --header "Authorization: Bearer $FLIGHTLOG_TOKEN"`, json: { mcpServers: { [name]: server('${FLIGHTLOG_TOKEN}') } } },
    cursor: { file: '.cursor/mcp.json or ~/.cursor/mcp.json', json: { mcpServers: { [name]: { url, headers: { Authorization: 'Bearer ${env:FLIGHTLOG_TOKEN}' } } } } },
    vscode: {
      file: '.vscode/mcp.json',
      json: { inputs: [{ type: 'promptString', id: 'flightlog-token', description: 'Flightlog token', password: true }], servers: { [name]: server('${input:flightlog-token}') } },
    },
  };
  if (agent) {
    io.stdout.write(JSON.stringify(snippets[agent].json, null, 2) + '\n');
    return 0;
  }
  for (const a of Object.keys(snippets)) io.stdout.write(`// ${a === 'claude' ? 'Claude Code' : a === 'cursor' ? 'Cursor' : 'VS Code'}: ${snippets[a].file}\n${JSON.stringify(snippets[a].json, null, 2)}\n\n`);
  io.stdout.write('// The agent presents its Flightlog token as a bearer: FLIGHTLOG_TOKEN under "flightlog run", else a token from "flightlog identity add".\n');
  return 0;
}
