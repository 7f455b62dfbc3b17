/**
 * The gateway's end of `flightlog mcp --connection NAME`. The pipe connects to a loopback port
 * the gateway announces in `DATA_DIR/mcp/NAME.json`, presents the agent's token in one hello
 * line, and from then on relays the agent's stdio byte for byte. For each pipe the gateway starts
 * the configured server as its own child (its secrets in the child's environment only), records
 * every message through an McpSession, and relays newline-delimited JSON-RPC both ways.
 *
 * Control lines (hello reply, the server's masked stderr, the reason a session ended) start with
 * 0x1E: a byte JSON text never holds unescaped, so the pipe tells them from MCP traffic.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { McpStdioUpstream } from '../common/config-schema';
import { mcpEnvSecrets } from '../config/load';
import type { Listener, ListenerContext, ViaCredential } from '../core/listener';
import type { Json } from '../common/types';
import { McpSession, mcpSessionContext, type FinalVerdict, type Verdict } from './session';
import { ToolBaselines, toolBaselinesFile } from './tool-drift';
import { listenOn } from '../net-listen';

export const CONTROL = 0x1e;
/** what the pipe says first */
export const HELLO_VERSION = 1;
/** a message longer than this ends the session (a runaway peer must not exhaust memory) */
const MAX_LINE = 64 * 1024 * 1024;
/** the hello line must arrive quickly and be small */
const HELLO_TIMEOUT_MS = 10_000;
const MAX_HELLO = 16 * 1024;
/** the server's stderr kept per session: enough to debug, bounded */
const MAX_STDERR_RECORDED = 256 * 1024;
/** a stderr line longer than this is masked and passed on in pieces */
const STDERR_LINE_MAX = 64 * 1024;
/** how long a server gets to exit after its stdin closes before it is killed */
const EXIT_GRACE_MS = 2000;
/** variables the server inherits from the gateway: what a program needs to run, nothing secret */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TEMP', 'TMP', 'SHELL', 'TERM', 'SystemRoot', 'APPDATA', 'LOCALAPPDATA', 'USERPROFILE', 'PATHEXT', 'ComSpec', 'NODE_EXTRA_CA_CERTS'];

export interface PipeHello {
  flightlog: 'mcp-pipe';
  version: number;
  connection: string;
  identity: string;
  token: string;
  /** the pipe's process, recorded as where the session came from */
  pid?: number;
}

export type ControlMessage = { ok: true; sessionId: string } | { ok: false; code: string; message: string } | { stderr: string } | { end: string };

export function controlLine(m: ControlMessage): Buffer {
  return Buffer.concat([Buffer.from([CONTROL]), Buffer.from(JSON.stringify(m) + '\n')]);
}

/** Where a stdio connection's port is announced for `flightlog mcp`. */
export function announceFile(dataDir: string, connection: string): string {
  return path.join(dataDir, 'mcp', `${connection}.json`);
}

/** Splits a byte stream into lines without the newline; keeps a partial line for the next chunk. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly onLine: (line: Buffer) => void,
    /** a partial line grew past `max`: it is handed over and forgotten */
    private readonly onOverflow: (partial: Buffer) => void,
    private readonly max = MAX_LINE,
  ) {}

  /** Passes on a partial line left at the end of the stream. */
  flush(): void {
    if (this.parts.length === 0) return;
    const line = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    this.onLine(line);
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.parts.length) {
        this.parts.push(piece);
        const line = Buffer.concat(this.parts);
        this.parts = [];
        this.size = 0;
        this.onLine(line);
      } else this.onLine(piece);
    }
    if (start < chunk.length) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
      if (this.size > this.max) {
        const partial = Buffer.concat(this.parts);
        this.parts = [];
        this.size = 0;
        this.onOverflow(partial);
      }
    }
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}

function serverEnv(secrets: Record<string, string>, via: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...via, ...mcpEnvSecrets(secrets) };
}

/**
 * `upstream.via`: libpq-style variables pointing the server's database client at the gateway's
 * listener of the first connection, logged in as the agent's identity with the session's token.
 */
function viaEnv(creds: Array<{ name: string; cred: ViaCredential }>, identity: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { name, cred } of creds) {
    const i = cred.address.lastIndexOf(':');
    const host = cred.address.slice(0, i).replace(/^\[|\]$/g, '');
    const port = cred.address.slice(i + 1);
    if (!env.PGHOST) Object.assign(env, { PGHOST: host, PGPORT: port, PGUSER: identity, PGPASSWORD: cred.token });
    env[`FLIGHTLOG_PG_${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`] = `postgresql://${encodeURIComponent(identity)}@${host}:${port}`;
  }
  return env;
}

export async function startMcpStdioListener(ctx: ListenerContext): Promise<Listener> {
  const upstream = ctx.connection.upstream as McpStdioUpstream;
  const name = ctx.connection.name;
  const tools = new ToolBaselines(ctx.masker, toolBaselinesFile(ctx.dataDir, name));
  const live = new Set<PipeConnection>();
  const server = net.createServer((socket) => {
    const c = new PipeConnection(socket, ctx, upstream, tools);
    live.add(c);
    socket.once('close', () => live.delete(c));
  });
  const a = await listenOn(server, ctx.connection.listen);
  const address = `${a.address}:${a.port}`;
  const file = announceFile(ctx.dataDir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify({ address, pid: process.pid }) + '\n', { mode: 0o600 });
  return {
    address,
    async close() {
      try {
        if (JSON.parse(fs.readFileSync(file, 'utf8')).address === address) fs.unlinkSync(file);
      } catch {
        // already gone
      }
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...live].map((c) => c.end('gateway shut down', 'flightlog: the gateway is shutting down')));
      await closed;
    },
  };
}

/** One pipe: its hello, its own server child, and the relay between them. */
class PipeConnection {
  private mcp: McpSession | null = null;
  private child: ChildProcessWithoutNullStreams | null = null;
  private chain: Promise<void> = Promise.resolve();
  private stderrRecorded = 0;
  private ended = false;
  private childExited: Promise<void> = Promise.resolve();
  /** upstream.via tokens of this session's server: they stop working when it exits */
  private via: Array<{ name: string; cred: ViaCredential }> = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ListenerContext,
    private readonly upstream: McpStdioUpstream,
    private readonly tools: ToolBaselines,
  ) {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let hello = Buffer.alloc(0);
    const timer = setTimeout(() => this.refuse('E_MCP_HELLO', 'no hello from the pipe'), HELLO_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      hello = Buffer.concat([hello, chunk]);
      const nl = hello.indexOf(10);
      if (nl === -1) {
        if (hello.length > MAX_HELLO) {
          clearTimeout(timer);
          socket.off('data', onData);
          this.refuse('E_MCP_HELLO', 'the hello line is too long');
        }
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const rest = hello.subarray(nl + 1);
      this.start(parseJson(hello.subarray(0, nl)), rest).catch((err: Error) => {
        ctx.log.error(`connection "${ctx.connection.name}": an MCP pipe failed to start: ${err.message}`);
        this.refuse('E_MCP_INTERNAL', 'the gateway could not start this MCP session (see its log)');
        void this.end('internal error');
      });
    };
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(timer);
      void this.end('the agent closed the MCP connection');
    });
  }

  private refuse(code: string, message: string): void {
    if (this.socket.destroyed) return;
    this.socket.end(controlLine({ ok: false, code, message }));
  }

  private async start(hello: unknown, rest: Buffer): Promise<void> {
    const ctx = this.ctx;
    const h = hello as Partial<PipeHello> | undefined;
    if (!h || h.flightlog !== 'mcp-pipe' || typeof h.identity !== 'string' || typeof h.token !== 'string') {
      return this.refuse('E_MCP_HELLO', 'not a flightlog mcp pipe');
    }
    if (h.connection !== ctx.connection.name) return this.refuse('E_MCP_CONNECTION', `this port serves connection "${ctx.connection.name}", not "${String(h.connection)}"`);
    const auth = ctx.authenticate(h.identity, { token: h.token });
    const clientAddr = typeof h.pid === 'number' ? `pipe pid ${h.pid}` : 'pipe';
    if (!auth.ok || !auth.identity) {
      ctx.recordFailedAttempt({ identity: h.identity, clientAddr, reason: auth.reason ?? 'bad-credential' });
      const message =
        auth.reason === 'revoked'
          ? `the token of identity "${h.identity}" was revoked`
          : auth.reason === 'not-allowed'
            ? `identity "${h.identity}" may not use connection "${ctx.connection.name}"`
            : `identity "${h.identity}" and its token do not match`;
      return this.refuse(`E_MCP_${(auth.reason ?? 'bad-credential').toUpperCase().replace(/-/g, '_')}`, message);
    }
    if (this.socket.destroyed) return;
    // the server is started before anything is recorded: a command that does not exist is one line to the agent
    let child: ChildProcessWithoutNullStreams;
    if (this.upstream.cwd && !fs.existsSync(this.upstream.cwd)) {
      return this.refuse('E_MCP_SPAWN', `cannot start the MCP server of connection "${ctx.connection.name}": its working directory ${this.upstream.cwd} does not exist`);
    }
    for (const name of this.upstream.via ?? []) {
      let cred: ViaCredential | null = null;
      try {
        cred = ctx.viaCredential?.(name, auth.identity, auth.runId ?? null) ?? null;
      } catch (err) {
        ctx.log.warn(`connection "${ctx.connection.name}": cannot mint a token for via "${name}": ${(err as Error).message}`);
      }
      if (!cred) {
        this.releaseVia();
        return this.refuse('E_MCP_VIA', `cannot start the MCP server of connection "${ctx.connection.name}": its via connection "${name}" is not listening`);
      }
      this.via.push({ name, cred });
    }
    try {
      child = await this.spawnServer(viaEnv(this.via, auth.identity));
    } catch (err) {
      this.releaseVia();
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'command not found' : (e.code ?? e.message);
      ctx.log.warn(`connection "${ctx.connection.name}": cannot start the MCP server (${this.upstream.command[0]}): ${why}`);
      return this.refuse('E_MCP_SPAWN', `cannot start the MCP server of connection "${ctx.connection.name}" (${this.upstream.command[0]}: ${why})`);
    }
    if (this.socket.destroyed || this.ended) {
      child.kill('SIGTERM');
      void this.childExited.then(() => this.releaseVia());
      return;
    }
    this.child = child;
    const session = ctx.openSession({ identity: auth.identity, runId: auth.runId ?? null, clientAddr, meta: { transport: 'stdio', command: this.upstream.command as Json, serverPid: child.pid ?? null } });
    this.mcp = new McpSession(mcpSessionContext(ctx, session, { identity: auth.identity, runId: auth.runId ?? null }, this.tools));
    for (const v of this.via) v.cred.bind(session.id);
    session.onTerminate((_reason, message) => void this.end(message, message));
    this.socket.write(controlLine({ ok: true, sessionId: session.id }));
    this.relay(child, rest);
  }

  private releaseVia(): void {
    for (const v of this.via) v.cred.release();
    this.via = [];
  }

  private spawnServer(via: Record<string, string>): Promise<ChildProcessWithoutNullStreams> {
    const [cmd, ...args] = this.upstream.command;
    const child = spawn(cmd, args, { cwd: this.upstream.cwd, env: serverEnv(this.ctx.secrets, via), stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.childExited = new Promise((resolve) => child.once('close', () => resolve()));
    return new Promise((resolve, reject) => {
      child.once('spawn', () => {
        child.off('error', reject);
        child.on('error', () => undefined);
        resolve(child);
      });
      child.once('error', reject);
    });
  }

  private relay(child: ChildProcessWithoutNullStreams, rest: Buffer): void {
    const socket = this.socket;
    const mcp = this.mcp!;
    const overflow = (who: string) => () => void this.end(`a message from the ${who} is larger than ${MAX_LINE} bytes`, `flightlog: a message from the ${who} exceeded ${MAX_LINE} bytes`);
    const fromClient = new LineSplitter((line) => {
      if (line.length === 0) return;
      this.chain = this.chain.then(() => this.clientLine(line)).catch(() => this.end('internal error relaying a client message', 'flightlog: internal error relaying a message; the session was ended'));
    }, overflow('agent'));
    // mask: live — the agent reads what the recording keeps: a message holding a secret is re-encoded masked
    const live = this.ctx.connection.mask === 'live';
    const fromServer = new LineSplitter((line) => {
      if (line.length === 0) return;
      const json = parseJson(line);
      mcp.serverMessage(json, line);
      let out = line;
      if (live && json !== undefined) {
        const masked = this.ctx.masker.maskValue(json as Json);
        if (masked.hits.length) out = Buffer.from(JSON.stringify(masked.value));
      }
      if (!socket.write(Buffer.concat([out, NEWLINE]))) child.stdout.pause();
    }, overflow('server'));
    socket.on('drain', () => child.stdout.resume());
    child.stdin.on('drain', () => socket.resume());
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (c: Buffer) => fromServer.push(c));
    // masked a line at a time: a secret split across two reads must not escape its rule
    const stderrLines = new LineSplitter(
      (line) => this.serverStderr(Buffer.concat([line, NEWLINE])),
      (partial) => this.serverStderr(partial),
      STDERR_LINE_MAX,
    );
    child.stderr.on('data', (c: Buffer) => stderrLines.push(c));
    child.stderr.once('end', () => stderrLines.flush());
    // 'close': the server's last lines are relayed before the session ends
    child.once('close', (code, signal) => void this.end(`the MCP server exited (${signal ?? `code ${code}`})`, `flightlog: the MCP server of connection "${this.ctx.connection.name}" exited (${signal ?? `code ${code}`})`));
    socket.on('data', (c: Buffer) => fromClient.push(c));
    if (rest.length) fromClient.push(rest);
    socket.resume();
  }

  private async clientLine(line: Buffer): Promise<void> {
    const mcp = this.mcp;
    if (!mcp || this.ended) return;
    const v = await mcp.clientMessage(parseJson(line), line);
    this.act(v, line);
  }

  private act(v: Verdict | FinalVerdict, line: Buffer): void {
    if (this.ended) return;
    switch (v.action) {
      case 'forward':
        if (!this.child!.stdin.write(Buffer.concat([line, NEWLINE]))) this.socket.pause();
        return;
      case 'answer':
        this.socket.write(JSON.stringify(v.message) + '\n');
        return;
      case 'drop':
        return;
      case 'hold':
        void v.outcome.then((o) => this.act(o, line));
        return;
    }
  }

  private serverStderr(chunk: Buffer): void {
    const text = this.ctx.masker.maskText(chunk.toString('utf8')).text;
    if (this.stderrRecorded < MAX_STDERR_RECORDED && this.mcp) {
      this.stderrRecorded += chunk.length;
      this.mcp.stderr(text);
    }
    if (!this.socket.destroyed) this.socket.write(controlLine({ stderr: text }));
  }

  /** Ends the session once: tells the pipe why (when there is something to tell), stops the server. */
  async end(reason: string, tell?: string): Promise<void> {
    if (this.ended) return this.childExited;
    this.ended = true;
    this.mcp?.close(reason);
    if (!this.socket.destroyed) {
      if (tell) this.socket.end(controlLine({ end: tell }));
      else this.socket.end();
    }
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const kill = setTimeout(() => child.kill('SIGTERM'), EXIT_GRACE_MS);
      const hard = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS * 2);
      await this.childExited;
      clearTimeout(kill);
      clearTimeout(hard);
    }
    this.releaseVia();
  }
}

const NEWLINE = Buffer.from('\n');
