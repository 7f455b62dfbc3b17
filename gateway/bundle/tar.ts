/**
 * A minimal ustar writer and reader: regular files only, streaming, bounded. Written here rather
 * than taken from npm because the bundle reader is a security boundary: it must treat every
 * header as hostile (sizes, names, types) and never extract anything to disk.
 */
import * as fs from 'node:fs';
import { BundleError } from './errors';

const BLOCK = 512;
/** GNU tar's default record: archives padded to it read cleanly everywhere. */
const RECORD = 20 * BLOCK;
const CHUNK = 1024 * 1024;

function pad512(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  const s = value.toString(8).padStart(width - 1, '0');
  if (s.length > width - 1) {
    // base-256 (GNU) for values past the octal field: sizes over 8 GiB
    buf[offset] = 0x80;
    let v = BigInt(value);
    for (let i = width - 1; i > 0; i--) {
      buf[offset + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return;
  }
  buf.write(s, offset, width - 1, 'ascii');
  buf[offset + width - 1] = 0;
}

/** One ustar header block for a regular file (type '0'); other types only for tests of the reader. */
export function ustarHeader(name: string, size: number, mtime: number, type = '0'): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new BundleError('E_BUNDLE_NAME', `member name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, Math.floor(mtime / 1000));
  h.fill(0x20, 148, 156);
  h.write(type, 156, 1, 'ascii');
  h.write('ustar\u000000', 257, 8, 'binary');
  h.write('flightlog', 265, 32, 'ascii');
  h.write('flightlog', 297, 32, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'binary');
  return h;
}

/** Writes members one after another to a file; sizes must be known before each member starts. */
export class TarWriter {
  private pos = 0;
  private constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly mtime: number,
  ) {}

  static async create(file: string, mtime = Date.now()): Promise<TarWriter> {
    return new TarWriter(await fs.promises.open(file, 'wx', 0o644), mtime);
  }

  get bytes(): number {
    return this.pos;
  }

  private async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    this.pos += buf.length;
  }

  async addBuffer(name: string, data: Buffer): Promise<void> {
    await this.write(ustarHeader(name, data.length, this.mtime));
    await this.write(data);
    await this.write(Buffer.alloc(pad512(data.length)));
  }

  /** Copies a file in as a member, chunk by chunk; `onChunk` sees progress in bytes. */
  async addFile(name: string, file: string, size: number, onChunk?: (bytes: number) => void): Promise<void> {
    await this.write(ustarHeader(name, size, this.mtime));
    const src = await fs.promises.open(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, size - done), done);
        if (bytesRead === 0) throw new BundleError('E_BUNDLE_WRITE', `${file} shrank while it was being bundled`);
        await this.write(buf.subarray(0, bytesRead));
        done += bytesRead;
        onChunk?.(bytesRead);
      }
    } finally {
      await src.close();
    }
    await this.write(Buffer.alloc(pad512(size)));
  }

  /** Two zero blocks end the archive; then pad to a full record. */
  async finish(): Promise<number> {
    await this.write(Buffer.alloc(2 * BLOCK));
    await this.write(Buffer.alloc((RECORD - (this.pos % RECORD)) % RECORD));
    await this.fh.sync();
    await this.fh.close();
    return this.pos;
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

export interface TarLimits {
  maxMembers: number;
  /** any one member */
  maxMemberBytes: number;
}

export interface TarEntry {
  name: string;
  size: number;
  /** where the content starts in the file */
  offset: number;
  /** position of this member in the archive, from 0 */
  index: number;
}

function readOctal(buf: Buffer, offset: number, width: number, field: string, where: string): number {
  if (buf[offset] & 0x80) {
    // base-256: only non-negative values that fit in a safe integer
    if (buf[offset] !== 0x80) throw new BundleError('E_BUNDLE_TAR', `${where} is corrupt: bad ${field} field`);
    let v = 0n;
    for (let i = 1; i < width; i++) v = (v << 8n) | BigInt(buf[offset + i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BundleError('E_BUNDLE_SIZE', `${where} claims an impossible ${field}`);
    return Number(v);
  }
  const s = buf.toString('ascii', offset, offset + width).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new BundleError('E_BUNDLE_TAR', `${where} is corrupt: bad ${field} field`);
  return parseInt(s, 8);
}

function cString(buf: Buffer, offset: number, width: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end === -1 || end > offset + width ? offset + width : end);
}

const TYPE_NAMES: Record<string, string> = { '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '5': 'directory', '6': 'fifo', x: 'pax header', g: 'pax global header', L: 'GNU long name', K: 'GNU long link' };

/**
 * Reads a tar file member by member without extracting it. Every header is checked: checksum,
 * magic, type (regular files only), size against the limits and against what the file holds.
 */
export class TarReader {
  private pos = 0;
  private count = 0;
  private ended = false;

  private constructor(
    private readonly fh: fs.promises.FileHandle,
    readonly fileSize: number,
    private readonly limits: TarLimits,
  ) {}

  static async open(file: string, limits: TarLimits): Promise<TarReader> {
    let fh: fs.promises.FileHandle;
    try {
      // stat first: opening a FIFO or a device would block or read forever
      if (!(await fs.promises.stat(file)).isFile()) throw new BundleError('E_BUNDLE_OPEN', `${file} is not a regular file`);
      fh = await fs.promises.open(file, 'r');
    } catch (err) {
      if (err instanceof BundleError) throw err;
      throw new BundleError('E_BUNDLE_OPEN', `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new BundleError('E_BUNDLE_OPEN', `${file} is not a regular file`);
    }
    return new TarReader(fh, st.size, limits);
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  private async readAt(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === len ? buf : buf.subarray(0, got);
  }

  /** The next member, or null at the end-of-archive marker. */
  async next(): Promise<TarEntry | null> {
    if (this.ended) return null;
    const h = await this.readAt(this.pos, BLOCK);
    if (h.length === 0) throw new BundleError('E_BUNDLE_TRUNCATED', 'the file is truncated: it ends without the tar end-of-archive marker');
    if (h.length < BLOCK) throw new BundleError('E_BUNDLE_TRUNCATED', 'the file is truncated inside a tar header');
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return null;
    }
    const where = `tar header ${this.count + 1} (at byte ${this.pos})`;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (readOctal(h, 148, 8, 'checksum', where) !== sum) throw new BundleError('E_BUNDLE_TAR', `tar header ${this.count + 1} (at byte ${this.pos}) is corrupt: checksum mismatch`);
    if (h.toString('binary', 257, 262) !== 'ustar') throw new BundleError('E_BUNDLE_TAR', `tar header ${this.count + 1} is not a ustar header`);
    const prefix = cString(h, 345, 155);
    const base = cString(h, 0, 100);
    const name = prefix ? `${prefix}/${base}` : base;
    const type = String.fromCharCode(h[156]);
    if (type !== '0' && type !== '\0') {
      throw new BundleError('E_BUNDLE_MEMBER_TYPE', `member "${printable(name)}" is a ${TYPE_NAMES[type] ?? `type "${printable(type)}" entry`}; a bundle holds regular files only`);
    }
    const size = readOctal(h, 124, 12, 'size', where);
    if (++this.count > this.limits.maxMembers) throw new BundleError('E_BUNDLE_TOO_MANY', `the bundle has more than ${this.limits.maxMembers} members`);
    if (size > this.limits.maxMemberBytes) {
      throw new BundleError('E_BUNDLE_SIZE', `member "${printable(name)}" claims ${humanBytes(size)}, over the ${humanBytes(this.limits.maxMemberBytes)} limit for one member`);
    }
    const offset = this.pos + BLOCK;
    if (offset + size > this.fileSize) {
      throw new BundleError('E_BUNDLE_TRUNCATED', `the file is truncated: member "${printable(name)}" claims ${humanBytes(size)} but only ${humanBytes(Math.max(0, this.fileSize - offset))} remain`);
    }
    this.pos = offset + size + pad512(size);
    return { name, size, offset, index: this.count - 1 };
  }

  /** A member's content in chunks; reads by position, so members can be read in any order. */
  async *content(e: TarEntry, chunk = CHUNK): AsyncGenerator<Buffer> {
    let done = 0;
    while (done < e.size) {
      const want = Math.min(chunk, e.size - done);
      const buf = await this.readAt(e.offset + done, want);
      if (buf.length < want) throw new BundleError('E_BUNDLE_TRUNCATED', `the file is truncated inside member "${printable(e.name)}"`);
      done += want;
      yield buf;
    }
  }

  /** A whole member in memory: only for members already bounded by a small limit. */
  async readAll(e: TarEntry): Promise<Buffer> {
    const buf = await this.readAt(e.offset, e.size);
    if (buf.length < e.size) throw new BundleError('E_BUNDLE_TRUNCATED', `the file is truncated inside member "${printable(e.name)}"`);
    return buf;
  }
}

/** Names from hostile input are shown escaped and short, never as raw control characters. */
export function printable(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length > 120 ? t.slice(0, 117) + '…' : t;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}
