/**
 * The SFTP subsystem as a raw relay with a parser on each direction: packets pass unchanged,
 * while the recording gets one `sftp` command per file operation (open…close with sizes, rename,
 * remove, mkdir, rmdir, setstat, symlink) and, for text files the agent writes, the content
 * before and after (capped) so the app can show a diff.
 */
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import type { CommandHandle, Direction, Json, PolicyDecision, PolicyInput, SessionRecorder } from '../common/types';
import { blockedMessage, decisionDetail } from '../policy/decision';
import { decodePacket, describeFlags, OPEN_FLAGS, opName, SFTP, SftpFramer, type SftpPacket } from './sftp-parser';

export interface SftpProxyOptions {
  session: SessionRecorder;
  /** a separate SFTP channel of the gateway's own, to read a file's content before it is written */
  sideChannel: () => Promise<SFTPWrapper>;
  /** bytes of before/after content kept per file */
  contentCap: number;
  /** the guardrail decision for one request; absent, every request is forwarded */
  decide?: (sftp: NonNullable<PolicyInput['sftp']>, text: string) => PolicyDecision;
}

/** What a guardrail sees of a request: its operation and the absolute paths it touches. */
interface Guarded {
  op: string;
  path: string;
  target?: string;
}

const STATUS_PERMISSION_DENIED = 3;

interface Pending {
  packet: SftpPacket;
  command?: CommandHandle;
  before?: Snapshot;
}

/** a written file's content is what the agent sent; its content before is what the gateway read, unseen by the agent */
const FILE_RESULT_FROM: Record<string, Direction> = { 'diff.after': 'client→upstream', 'diff.before': 'gateway' };

type Snapshot = { kind: 'absent' } | { kind: 'content'; data: Buffer } | { kind: 'unavailable'; reason: string };

interface OpenFile {
  path: string;
  flags: number;
  command: CommandHandle;
  bytesRead: number;
  bytesWritten: number;
  before?: Snapshot;
  /** the file's content as the agent's writes leave it, while it stays under the cap */
  image: Buffer | null;
  imageLen: number;
}

const MUTATING = new Set<number>([SFTP.REMOVE, SFTP.MKDIR, SFTP.RMDIR, SFTP.RENAME, SFTP.SETSTAT, SFTP.FSETSTAT, SFTP.SYMLINK]);

/** `..`, `.` and repeated or trailing slashes resolved, as the server will resolve them. */
function normalize(path: string): string {
  const n = posix.normalize(path.startsWith('/') ? path : `/${path}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** SSH_FXP_STATUS (v3): id, code, message, language tag. */
function statusPacket(id: number, code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const body = Buffer.alloc(1 + 4 + 4 + 4 + msg.length + 4);
  let o = body.writeUInt8(101, 0);
  o = body.writeUInt32BE(id, o);
  o = body.writeUInt32BE(code, o);
  o = body.writeUInt32BE(msg.length, o);
  o += msg.copy(body, o);
  body.writeUInt32BE(0, o);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

function isText(buf: Buffer): boolean {
  if (buf.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

export class SftpProxy {
  private readonly pending = new Map<number, Pending>();
  private readonly files = new Map<string, OpenFile>();
  private readonly dirs = new Map<string, string>();
  private readonly up = new SftpFramer();
  private readonly down = new SftpFramer();
  /** packets from the agent waiting behind a before-snapshot, in order */
  private queue: Buffer[] = [];
  private holding = false;
  private parseFailed = false;
  /** the client sent what could not be parsed while guardrails apply: nothing more is forwarded */
  private refusing = false;
  /** replies the gateway makes itself, waiting for the upstream's reply stream to reach a packet boundary */
  private ownReplies: Buffer[] = [];
  private home: Promise<string | null> | null = null;

  constructor(
    private readonly client: Readable & Writable,
    private readonly upstream: Readable & Writable,
    private readonly opts: SftpProxyOptions,
  ) {}

  start(): void {
    let upWaiting = false;
    const writeUp = (buf: Buffer): void => {
      if (!this.upstream.write(buf) && !upWaiting) {
        upWaiting = true;
        this.client.pause();
        this.upstream.once('drain', () => {
          upWaiting = false;
          if (!this.holding) this.client.resume();
        });
      }
    };
    const pump = async (): Promise<void> => {
      while (this.queue.length && !this.refusing) {
        const packet = this.queue.shift() as Buffer;
        const decoded = decodePacket(packet);
        const guarded = this.opts.decide ? this.guarded(decoded) : null;
        if (guarded) {
          let g = guarded;
          if (!g.path.startsWith('/') || (g.target !== undefined && !g.target.startsWith('/'))) {
            this.holding = true;
            this.client.pause();
            g = { ...g, path: await this.fromHome(g.path), target: g.target === undefined ? undefined : await this.fromHome(g.target) };
            this.holding = false;
            if (!upWaiting) this.client.resume();
          }
          if (this.refuse(decoded, g)) continue;
        }
        if (decoded.type === SFTP.OPEN && decoded.flags !== undefined && decoded.flags & OPEN_FLAGS.WRITE && decoded.path) {
          this.holding = true;
          this.client.pause();
          const before = await this.snapshot(decoded.path);
          this.onRequest(decoded, before);
          this.holding = false;
          if (!upWaiting) this.client.resume();
        } else {
          this.onRequest(decoded);
        }
        writeUp(packet);
      }
    };
    const failed = (e: unknown): void => {
      this.unparsed(e);
      // Requests the gateway cannot read cannot be checked against guardrails: end rather than relay them.
      if (this.opts.decide) {
        this.refusing = true;
        this.client.end();
        this.upstream.end();
      }
    };
    this.client.on('data', (chunk: Buffer) => {
      if (this.refusing) return;
      if (this.parseFailed && !this.opts.decide) return writeUp(chunk);
      let packets: Buffer[];
      try {
        packets = this.up.push(chunk);
      } catch (e) {
        failed(e);
        return this.refusing ? undefined : writeUp(chunk);
      }
      const wasEmpty = this.queue.length === 0;
      this.queue.push(...packets);
      if (wasEmpty && !this.holding) void pump().catch(failed);
    });

    let downWaiting = false;
    this.upstream.on('data', (chunk: Buffer) => {
      if (!this.parseFailed) {
        try {
          for (const p of this.down.push(chunk)) this.onResponse(decodePacket(p));
        } catch (e) {
          this.unparsed(e);
        }
      }
      const ok = this.client.write(chunk);
      this.flushOwnReplies();
      if (!ok && !downWaiting) {
        downWaiting = true;
        this.upstream.pause();
        this.client.once('drain', () => {
          downWaiting = false;
          this.upstream.resume();
        });
      }
    });
  }

  /** The request's operation and absolute paths, for the requests a guardrail can name. */
  private guarded(p: SftpPacket): Guarded | null {
    if (p.id === null) return null;
    const both = (op: string): Guarded | null => (p.path !== undefined && p.path2 !== undefined ? { op, path: p.path, target: p.path2 } : null);
    const one = (op: string): Guarded | null => (p.path !== undefined ? { op, path: p.path } : null);
    switch (p.type) {
      case SFTP.OPEN:
        return p.flags === undefined ? null : one(p.flags & OPEN_FLAGS.WRITE ? 'write' : 'read');
      case SFTP.REMOVE:
        return one('remove');
      case SFTP.MKDIR:
        return one('mkdir');
      case SFTP.RMDIR:
        return one('rmdir');
      case SFTP.SETSTAT:
        return one('setstat');
      case SFTP.FSETSTAT: {
        const f = p.handle ? this.files.get(p.handle)?.path ?? this.dirs.get(p.handle) : undefined;
        return f === undefined ? null : { op: 'setstat', path: f };
      }
      case SFTP.RENAME:
        return both('rename');
      // a link creates a name: it is a write, of either path since OpenSSH swaps symlink's arguments
      case SFTP.SYMLINK:
        return both('write');
      case SFTP.EXTENDED:
        if (p.extName === 'posix-rename@openssh.com') return both('rename');
        if (p.extName === 'hardlink@openssh.com') return both('write');
        if (p.extName === 'lsetstat@openssh.com') return one('setstat');
        return null;
      default:
        return null;
    }
  }

  /** Decides a request; a denied one is answered here with PERMISSION_DENIED, recorded as blocked and never forwarded. */
  private refuse(p: SftpPacket, g: Guarded): boolean {
    const decide = this.opts.decide;
    if (!decide || p.id === null) return false;
    const path = normalize(g.path);
    const target = g.target === undefined ? undefined : normalize(g.target);
    const text = `${g.op} ${[path, target].filter((x) => x !== undefined).join(' → ')}`;
    const decision = decide(target === undefined ? { op: g.op, path } : { op: g.op, path, target }, text);
    if (decision.action === 'allow') return false;
    // Holding an SFTP request for a human is not supported: the client would time out waiting.
    const message = decision.action === 'hold' ? `${blockedMessage({ ...decision, action: 'block', reason: decision.reason ?? 'needs a human\'s approval' })} (approval is not available over SFTP, so it is denied)` : blockedMessage(decision);
    const session = this.opts.session;
    const targets = [path, target].filter((x): x is string => x !== undefined);
    const command = session.startCommand({ kind: 'sftp', text, classification: g.op === 'read' ? 'read' : 'write', targets, detail: { ...this.describe(p), op: g.op } });
    session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: command.id, detail: decisionDetail(decision, text) });
    command.finish({ status: 'blocked', error: message, result: { code: STATUS_PERMISSION_DENIED } });
    this.reply(statusPacket(p.id, STATUS_PERMISSION_DENIED, message));
    return true;
  }

  /** A relative path as the upstream resolves it: from the login's home directory. */
  private async fromHome(path: string): Promise<string> {
    if (path.startsWith('/')) return path;
    this.home ??= this.opts.sideChannel().then(
      (sftp) => new Promise<string | null>((resolve) => sftp.realpath('.', (err, home) => resolve(err ? null : home))),
      () => null,
    );
    // an unknown home still leaves `..` resolved, so a relative path cannot climb past a rule's root unseen
    return `${(await this.home) ?? ''}/${path}`;
  }

  /** Writes a reply of the gateway's own between two of the upstream's packets, never inside one. */
  private reply(packet: Buffer): void {
    this.ownReplies.push(packet);
    this.flushOwnReplies();
  }

  private flushOwnReplies(): void {
    if (this.ownReplies.length === 0 || (!this.parseFailed && this.down.buffered > 0)) return;
    for (const r of this.ownReplies) this.client.write(r);
    this.ownReplies = [];
  }

  /** The subsystem ended: files still open are recorded as such. */
  finish(): void {
    for (const [handle, f] of this.files) {
      f.command.finish({ status: 'cancelled', result: this.fileResult(f), error: 'channel closed with the file open', resultFrom: FILE_RESULT_FROM });
      this.files.delete(handle);
    }
    for (const p of this.pending.values()) p.command?.finish({ status: 'cancelled', error: 'channel closed before the reply' });
    this.pending.clear();
  }

  private unparsed(e: unknown): void {
    if (this.parseFailed) return;
    this.parseFailed = true;
    // Stop interpreting but keep relaying, and say so in the recording.
    this.opts.session.event('sftp', 'gateway', { op: 'unparsed', reason: e instanceof Error ? e.message : String(e) });
  }

  private async snapshot(path: string): Promise<Snapshot> {
    const cap = this.opts.contentCap;
    try {
      const sftp = await this.opts.sideChannel();
      const stats = await new Promise<{ size: number; isFile: boolean } | null>((resolve, reject) =>
        sftp.stat(path, (err, st) => {
          if (err) return (err as { code?: number }).code === 2 ? resolve(null) : reject(err);
          resolve({ size: st.size, isFile: st.isFile() });
        }),
      );
      if (!stats) return { kind: 'absent' };
      if (!stats.isFile) return { kind: 'unavailable', reason: 'not a regular file' };
      if (stats.size > cap) return { kind: 'unavailable', reason: `larger than ${cap} bytes` };
      const data = await new Promise<Buffer>((resolve, reject) =>
        sftp.readFile(path, (err, buf) => (err ? reject(err) : resolve(buf))),
      );
      return { kind: 'content', data: data.subarray(0, cap) };
    } catch (e) {
      return { kind: 'unavailable', reason: e instanceof Error ? e.message : 'read failed' };
    }
  }

  private onRequest(p: SftpPacket, before?: Snapshot): void {
    if (p.id === null) {
      this.opts.session.event('sftp', 'client→upstream', { op: opName(p.type) });
      return;
    }
    const session = this.opts.session;
    switch (p.type) {
      case SFTP.READ:
        this.pending.set(p.id, { packet: p });
        return;
      case SFTP.WRITE: {
        const f = p.handle ? this.files.get(p.handle) : undefined;
        if (f && p.data && p.offset !== undefined) this.applyWrite(f, p.offset, p.data);
        // Keep no reference to the payload: only its length is needed for the reply.
        this.pending.set(p.id, { packet: { type: p.type, id: p.id, handle: p.handle, length: p.length } });
        return;
      }
      case SFTP.CLOSE:
      case SFTP.READDIR:
      case SFTP.FSTAT:
        this.pending.set(p.id, { packet: p });
        return;
      case SFTP.OPEN:
        session.event('sftp', 'client→upstream', { op: 'open', path: p.path ?? '', flags: describeFlags(p.flags ?? 0) });
        this.pending.set(p.id, { packet: p, before });
        return;
      default:
        break;
    }
    const data = this.describe(p);
    if (MUTATING.has(p.type) || (p.type === SFTP.EXTENDED && p.path2 !== undefined)) {
      const targets = [p.path, p.path2].filter((x): x is string => typeof x === 'string');
      const f = p.handle ? this.files.get(p.handle) : undefined;
      if (f) targets.push(f.path);
      const command = session.startCommand({
        kind: 'sftp',
        text: `${String(data.op)} ${targets.join(' → ')}`.trim(),
        classification: 'write',
        targets,
        detail: data,
      });
      session.event('sftp', 'client→upstream', data, { commandId: command.id });
      this.pending.set(p.id, { packet: p, command });
    } else {
      session.event('sftp', 'client→upstream', data);
      this.pending.set(p.id, { packet: p });
    }
  }

  private describe(p: SftpPacket): { [k: string]: Json } {
    const op = p.type === SFTP.EXTENDED ? p.extName ?? 'extended' : opName(p.type);
    const d: { [k: string]: Json } = { op };
    if (p.path !== undefined) d.path = p.path;
    if (p.path2 !== undefined) d.path2 = p.path2;
    if (p.handle !== undefined) {
      const f = this.files.get(p.handle);
      const dir = this.dirs.get(p.handle);
      if (f || dir) d.path = f ? f.path : (dir as string);
    }
    if (p.attrs && Object.keys(p.attrs).length) d.attrs = { ...p.attrs };
    return d;
  }

  private onResponse(p: SftpPacket): void {
    if (p.id === null) return;
    const req = this.pending.get(p.id);
    if (!req) return;
    this.pending.delete(p.id);
    const q = req.packet;
    const session = this.opts.session;
    const ok = p.type !== SFTP.STATUS || p.code === 0;
    switch (q.type) {
      case SFTP.OPEN: {
        const path = q.path ?? '';
        const flags = q.flags ?? 0;
        const writing = (flags & OPEN_FLAGS.WRITE) !== 0;
        const text = `${writing ? 'write' : 'read'} ${path}`;
        if (p.type === SFTP.HANDLE && p.handle) {
          const command = session.startCommand({
            kind: 'sftp',
            text,
            classification: writing ? 'write' : 'read',
            targets: [path],
            detail: { op: 'open', path, flags: describeFlags(flags) },
          });
          const before = req.before;
          let image: Buffer | null = null;
          let imageLen = 0;
          if (writing && before) {
            if (before.kind === 'absent' || flags & OPEN_FLAGS.TRUNC) image = Buffer.alloc(0);
            else if (before.kind === 'content') {
              image = Buffer.from(before.data);
              imageLen = image.length;
            }
          }
          this.files.set(p.handle, { path, flags, command, bytesRead: 0, bytesWritten: 0, before, image, imageLen });
        } else {
          const command = session.startCommand({ kind: 'sftp', text, classification: writing ? 'write' : 'read', targets: [path] });
          command.finish({ status: 'error', error: p.message ?? 'open failed', result: { code: p.code ?? null } });
        }
        return;
      }
      case SFTP.OPENDIR:
        if (p.type === SFTP.HANDLE && p.handle && q.path !== undefined) this.dirs.set(p.handle, q.path);
        else if (!ok) session.event('sftp', 'upstream→client', { op: 'status', code: p.code ?? null, message: p.message ?? '' });
        return;
      case SFTP.READ: {
        const f = q.handle ? this.files.get(q.handle) : undefined;
        if (f && p.type === SFTP.DATA) f.bytesRead += p.length ?? 0;
        return;
      }
      case SFTP.WRITE: {
        const f = q.handle ? this.files.get(q.handle) : undefined;
        if (f && ok) f.bytesWritten += (req.packet.length ?? 0);
        return;
      }
      case SFTP.CLOSE: {
        const h = q.handle ?? '';
        const f = this.files.get(h);
        this.dirs.delete(h);
        if (!f) return;
        this.files.delete(h);
        f.command.finish(ok ? { status: 'ok', result: this.fileResult(f), resultFrom: FILE_RESULT_FROM } : { status: 'error', error: p.message ?? 'close failed', result: this.fileResult(f), resultFrom: FILE_RESULT_FROM });
        return;
      }
      default:
        if (req.command) {
          req.command.finish(ok ? { status: 'ok' } : { status: 'error', error: p.message ?? 'failed', result: { code: p.code ?? null } });
        } else if (!ok && p.code !== 1 /* EOF is a normal end of listing */) {
          session.event('sftp', 'upstream→client', { op: 'status', request: opName(q.type), code: p.code ?? null, message: p.message ?? '' });
        }
    }
  }

  private applyWrite(f: OpenFile, offset: number, data: Buffer): void {
    // bytesWritten is counted on the reply, so failed writes do not count; the image is best-effort.
    const end = offset + data.length;
    if (f.image === null) return;
    if (end > this.opts.contentCap) {
      f.image = null;
      return;
    }
    if (end > f.image.length) {
      const grown = Buffer.alloc(Math.min(this.opts.contentCap, Math.max(end, f.image.length * 2)));
      f.image.copy(grown, 0, 0, f.imageLen);
      f.image = grown;
    }
    data.copy(f.image, offset);
    if (end > f.imageLen) f.imageLen = end;
  }

  private fileResult(f: OpenFile): Json {
    const result: { [k: string]: Json } = { path: f.path, bytesRead: f.bytesRead, bytesWritten: f.bytesWritten };
    if (!(f.flags & OPEN_FLAGS.WRITE)) return result;
    const before = f.before;
    if (!before || before.kind === 'unavailable') {
      result.diff = { unavailable: before?.kind === 'unavailable' ? before.reason : 'no snapshot' };
      return result;
    }
    if (f.image === null) {
      result.diff = { unavailable: `larger than ${this.opts.contentCap} bytes` };
      return result;
    }
    const after = f.image.subarray(0, f.imageLen);
    const beforeText = before.kind === 'content' ? before.data : null;
    if ((beforeText && !isText(beforeText)) || !isText(after)) {
      result.diff = { unavailable: 'binary content' };
      return result;
    }
    result.diff = { before: beforeText ? beforeText.toString('utf8') : null, after: after.toString('utf8') };
    return result;
  }
}
