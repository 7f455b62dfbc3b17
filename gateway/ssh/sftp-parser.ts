/**
 * SFTP (v3, draft-ietf-secsh-filexfer-02, as OpenSSH speaks it) framing and decoding: just enough
 * to name every file operation, its paths, handles and sizes. The relay forwards packets as they
 * are; this module never re-encodes anything.
 */

export const SFTP = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9,
  FSETSTAT: 10, OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16,
  STAT: 17, RENAME: 18, READLINK: 19, SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103,
  NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
} as const;

export const OPEN_FLAGS = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 0x10, EXCL: 0x20 } as const;

const OP_NAMES: Record<number, string> = {
  1: 'init', 2: 'version', 3: 'open', 4: 'close', 5: 'read', 6: 'write', 7: 'lstat', 8: 'fstat',
  9: 'setstat', 10: 'fsetstat', 11: 'opendir', 12: 'readdir', 13: 'remove', 14: 'mkdir', 15: 'rmdir',
  16: 'realpath', 17: 'stat', 18: 'rename', 19: 'readlink', 20: 'symlink', 101: 'status', 102: 'handle',
  103: 'data', 104: 'name', 105: 'attrs', 200: 'extended', 201: 'extended-reply',
};

export function opName(type: number): string {
  return OP_NAMES[type] ?? `type-${type}`;
}

/** Largest packet we accept to frame; OpenSSH caps at 256 KiB. */
export const MAX_PACKET = 1024 * 1024;

export class SftpFrameError extends Error {
  readonly code = 'E_SFTP_FRAME';
}

/** Splits a byte stream into whole SFTP packets (length prefix included). */
export class SftpFramer {
  private chunks: Buffer[] = [];
  private have = 0;

  /** bytes of a packet not yet complete: zero exactly at a packet boundary */
  get buffered(): number {
    return this.have;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.have < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > MAX_PACKET) throw new SftpFrameError(`SFTP packet of ${len} bytes exceeds ${MAX_PACKET}`);
      if (this.have < 4 + len) break;
      out.push(this.take(4 + len));
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let packet: Buffer;
    if (first.length >= n) {
      packet = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      packet = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.have -= n;
    return packet;
  }
}

export interface SftpAttrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
}

/** One decoded packet: the fields the recording needs, nothing else. */
export interface SftpPacket {
  type: number;
  id: number | null;
  path?: string;
  path2?: string;
  handle?: string;
  flags?: number;
  offset?: number;
  length?: number;
  /** WRITE payload / DATA payload (a view into the packet, not a copy) */
  data?: Buffer;
  attrs?: SftpAttrs;
  code?: number;
  message?: string;
  extName?: string;
  count?: number;
}

class Reader {
  p = 5;
  constructor(private readonly b: Buffer) {}
  u32(): number {
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u64(): number {
    const hi = this.b.readUInt32BE(this.p);
    const lo = this.b.readUInt32BE(this.p + 4);
    this.p += 8;
    return hi * 0x100000000 + lo;
  }
  bytes(): Buffer {
    const len = this.u32();
    if (this.p + len > this.b.length) throw new RangeError('string runs past packet');
    const v = this.b.subarray(this.p, this.p + len);
    this.p += len;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
  attrs(): SftpAttrs {
    const flags = this.u32();
    const a: SftpAttrs = {};
    if (flags & 1) a.size = this.u64();
    if (flags & 2) {
      a.uid = this.u32();
      a.gid = this.u32();
    }
    if (flags & 4) a.permissions = this.u32();
    if (flags & 8) {
      a.atime = this.u32();
      a.mtime = this.u32();
    }
    return a;
  }
}

/** Decodes a framed packet; unknown or malformed fields are left out rather than thrown. */
export function decodePacket(packet: Buffer): SftpPacket {
  const type = packet.length > 4 ? packet[4] : 0;
  const out: SftpPacket = { type, id: null };
  if (type === SFTP.INIT || type === SFTP.VERSION) return out;
  const r = new Reader(packet);
  try {
    out.id = r.u32();
    switch (type) {
      case SFTP.OPEN:
        out.path = r.str();
        out.flags = r.u32();
        out.attrs = r.attrs();
        break;
      case SFTP.CLOSE:
      case SFTP.FSTAT:
      case SFTP.READDIR:
      case SFTP.HANDLE:
        out.handle = r.bytes().toString('hex');
        break;
      case SFTP.READ:
        out.handle = r.bytes().toString('hex');
        out.offset = r.u64();
        out.length = r.u32();
        break;
      case SFTP.WRITE:
        out.handle = r.bytes().toString('hex');
        out.offset = r.u64();
        out.data = r.bytes();
        out.length = out.data.length;
        break;
      case SFTP.FSETSTAT:
        out.handle = r.bytes().toString('hex');
        out.attrs = r.attrs();
        break;
      case SFTP.SETSTAT:
      case SFTP.MKDIR:
        out.path = r.str();
        out.attrs = r.attrs();
        break;
      case SFTP.LSTAT:
      case SFTP.OPENDIR:
      case SFTP.REMOVE:
      case SFTP.RMDIR:
      case SFTP.REALPATH:
      case SFTP.STAT:
      case SFTP.READLINK:
        out.path = r.str();
        break;
      case SFTP.RENAME:
      case SFTP.SYMLINK:
        out.path = r.str();
        out.path2 = r.str();
        break;
      case SFTP.STATUS:
        out.code = r.u32();
        out.message = r.str();
        break;
      case SFTP.DATA:
        out.data = r.bytes();
        out.length = out.data.length;
        break;
      case SFTP.NAME:
        out.count = r.u32();
        break;
      case SFTP.ATTRS:
        out.attrs = r.attrs();
        break;
      case SFTP.EXTENDED:
        out.extName = r.str();
        if (out.extName === 'posix-rename@openssh.com' || out.extName === 'hardlink@openssh.com') {
          out.path = r.str();
          out.path2 = r.str();
        } else if (out.extName === 'statvfs@openssh.com' || out.extName === 'lsetstat@openssh.com') {
          out.path = r.str();
        }
        break;
      default:
        break;
    }
  } catch {
    // A truncated field: keep what was read; the packet is still forwarded untouched.
  }
  return out;
}

export function describeFlags(flags: number): string[] {
  const names: string[] = [];
  for (const [name, bit] of Object.entries(OPEN_FLAGS)) if (flags & bit) names.push(name.toLowerCase());
  return names;
}
