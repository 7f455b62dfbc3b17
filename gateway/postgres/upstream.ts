/**
 * Logs in to the real server with the connection's own credentials: TLS as libpq's sslmode
 * (prefer by default; verify-full checks the chain and the host name), then SCRAM-SHA-256, md5,
 * cleartext or trust.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { PostgresUpstream } from '../common/config-schema';
import { ScramClient } from '../core/scram';
import { decodeFields } from './server-messages';
import * as wire from './wire';

export class UpstreamError extends Error {
  readonly code: string;
  /** the server's own ErrorResponse, to relay to the client when it is the server's answer */
  readonly serverError: Buffer | null;
  /** the server had sent AuthenticationOk before refusing (a database check, not a login failure) */
  readonly afterAuthOk: boolean;
  constructor(code: string, message: string, serverError: Buffer | null = null, afterAuthOk = false) {
    super(message);
    this.name = 'UpstreamError';
    this.code = code;
    this.serverError = serverError;
    this.afterAuthOk = afterAuthOk;
  }
}

/** Buffered reader for the handshake: resolves whole frames, hands leftovers to the relay. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;
  private readonly onData = (d: Buffer): void => {
    this.chunks.push(d);
    this.size += d.length;
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = this.ended ?? new UpstreamError('PG_CLOSED', 'connection closed during startup');
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.ended = err;
    this.wake();
  };

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  private async need(n: number): Promise<Buffer> {
    while (this.size < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.chunks[0];
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  async bytes(n: number): Promise<Buffer> {
    await this.need(n);
    return this.take(n);
  }

  /** An untyped startup packet (length word first). */
  async startupPacket(maxLen = 10000): Promise<Buffer> {
    const head = await this.need(4);
    const len = head.readInt32BE(0);
    if (len < 8 || len > maxLen) throw new UpstreamError('PG_BAD_STARTUP', 'invalid length of startup packet');
    await this.need(len);
    return this.take(len);
  }

  /** A typed frame: {type, body}. */
  async frame(maxLen = 1 << 20): Promise<{ type: string; body: Buffer; raw: Buffer }> {
    const head = await this.need(5);
    const len = head.readInt32BE(1);
    if (len < 4 || len > maxLen) throw new UpstreamError('PG_PROTOCOL', 'invalid message length during startup');
    await this.need(len + 1);
    const raw = this.take(len + 1);
    return { type: String.fromCharCode(raw[0]), body: raw.subarray(5), raw };
  }

  /** Whether any bytes are buffered (a client sending data right after SSLRequest is refused). */
  get buffered(): number {
    return this.size;
  }

  /** Stops reading; returns unread bytes. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = this.chunks.length ? Buffer.concat(this.chunks) : Buffer.alloc(0);
    this.chunks = [];
    this.size = 0;
    return rest;
  }
}

export interface UpstreamLogin {
  socket: Duplex;
  /** the server's BackendKeyData, for forwarding cancels */
  pid: number;
  secret: number;
  /** ParameterStatus and NoticeResponse frames received during startup, to relay to the client */
  startupFrames: Buffer[];
  txStatus: string;
  /** bytes after the first ReadyForQuery */
  leftover: Buffer;
  tls: boolean;
}

function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => { s.destroy(); reject(new UpstreamError('PG_UPSTREAM_TIMEOUT', `upstream ${host}:${port} did not answer`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.setNoDelay(true); resolve(s); });
    s.once('error', (err) => { clearTimeout(t); reject(new UpstreamError('PG_UPSTREAM_UNREACHABLE', `upstream ${host}:${port} unreachable: ${err.message}`)); });
  });
}

/** Opens a transport to the server, negotiating TLS as the connection asks. */
export async function openTransport(up: PostgresUpstream, timeoutMs = 10000): Promise<{ socket: Duplex; tls: boolean }> {
  const raw = await connectTcp(up.host, up.port, timeoutMs);
  // libpq's default: ask for TLS, take plain when the server says 'N'
  const mode = up.tls ?? 'prefer';
  if (mode === 'disable') return { socket: raw, tls: false };
  raw.write(wire.sslRequest());
  const reader = new FrameReader(raw);
  let answer: Buffer;
  try {
    answer = await reader.bytes(1);
  } finally {
    reader.detach();
  }
  if (answer[0] !== 0x53) {
    if (mode === 'prefer') return { socket: raw, tls: false };
    raw.destroy();
    throw new UpstreamError('PG_UPSTREAM_TLS', `upstream ${up.host}:${up.port} does not support TLS`);
  }
  const verify = mode === 'verify-full';
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      servername: net.isIP(up.host) ? undefined : up.host,
      host: up.host,
      ca: verify && up.ca ? fs.readFileSync(up.ca) : undefined,
      rejectUnauthorized: verify,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', (err) => {
      raw.destroy();
      reject(new UpstreamError('PG_UPSTREAM_TLS', `upstream TLS failed: ${err.message}`));
    });
  });
  return { socket, tls: true };
}

function md5Hex(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}

/** Runs startup and authentication; resolves at the first ReadyForQuery. */
export async function loginUpstream(up: PostgresUpstream, password: string | undefined, params: Record<string, string>): Promise<UpstreamLogin> {
  const { socket, tls: isTls } = await openTransport(up);
  const reader = new FrameReader(socket);
  const fail = (err: unknown): never => {
    reader.detach();
    socket.destroy();
    throw err;
  };
  try {
    socket.write(wire.startupMessage(params));
    let scram: ScramClient | null = null;
    const startupFrames: Buffer[] = [];
    let pid = 0;
    let secret = 0;
    let authOk = false;
    for (;;) {
      const { type, body, raw } = await reader.frame();
      if (type === 'E') {
        const f = decodeFields(body, 0, body.length);
        throw new UpstreamError('PG_UPSTREAM_LOGIN', `upstream refused login: ${f.M ?? 'unknown error'}`, raw, authOk);
      }
      if (type === 'R') {
        const code = body.readInt32BE(0);
        const needPassword = (): string => {
          if (password === undefined) throw new UpstreamError('PG_UPSTREAM_LOGIN', 'upstream asks for a password but the connection has none configured');
          return password;
        };
        if (code === 0) {
          authOk = true;
          continue;
        }
        if (code === 3) socket.write(wire.passwordMessage(needPassword()));
        else if (code === 5) {
          const salt = body.subarray(4, 8);
          const inner = md5Hex(needPassword() + up.user);
          socket.write(wire.passwordMessage('md5' + md5Hex(Buffer.concat([Buffer.from(inner), salt]))));
        } else if (code === 10) {
          const mechs = body.toString('utf8', 4).split('\0');
          if (!mechs.includes('SCRAM-SHA-256')) throw new UpstreamError('PG_UPSTREAM_LOGIN', `upstream offers no supported SASL mechanism (${mechs.filter(Boolean).join(', ')})`);
          scram = new ScramClient(needPassword());
          socket.write(wire.saslInitialResponse('SCRAM-SHA-256', scram.first()));
        } else if (code === 11) {
          if (!scram) throw new UpstreamError('PG_UPSTREAM_LOGIN', 'unexpected SASL continue from upstream');
          socket.write(wire.saslResponse(scram.final(body.toString('utf8', 4))));
        } else if (code === 12) {
          if (!scram) throw new UpstreamError('PG_UPSTREAM_LOGIN', 'unexpected SASL final from upstream');
          scram.verify(body.toString('utf8', 4));
        } else {
          throw new UpstreamError('PG_UPSTREAM_LOGIN', `upstream asks for an unsupported authentication method (${code})`);
        }
        continue;
      }
      if (type === 'K') {
        pid = body.readInt32BE(0);
        secret = body.readInt32BE(4);
        continue;
      }
      if (type === 'S' || type === 'N') {
        startupFrames.push(Buffer.from(raw));
        continue;
      }
      if (type === 'Z') {
        const leftover = reader.detach();
        return { socket, pid, secret, startupFrames, txStatus: String.fromCharCode(body[0]), leftover, tls: isTls };
      }
      throw new UpstreamError('PG_UPSTREAM_PROTOCOL', `unexpected message '${type}' from upstream during startup`);
    }
  } catch (err) {
    return fail(err);
  }
}

/** Sends a CancelRequest for the given upstream backend; best effort, as in libpq. */
export async function cancelUpstream(up: PostgresUpstream, pid: number, secret: number): Promise<void> {
  const { socket } = await openTransport(up, 5000);
  await new Promise<void>((resolve) => {
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.write(wire.cancelRequest(pid, secret), () => socket.end());
    setTimeout(() => { socket.destroy(); resolve(); }, 5000).unref();
  });
}
