/**
 * The record journal's file: an append-only file beside the store (`flightlog.db-pending`) that holds
 * every batch of recorder rows the moment it is cut, before a listener forwards the command the
 * rows describe. One write() per batch is the acknowledgement; the writer thread then loads the
 * batches into SQLite in large transactions, and each transaction also moves the store's
 * `journal_state.seq` to the last batch it loaded. A batch is thus in the store exactly once: a
 * process that opens the store after a crash loads what the journal holds past that seq.
 *
 * Durability is SQLite's own with synchronous=NORMAL: a batch written here survives a crash of
 * the process (the kernel has it), not necessarily a power loss.
 *
 * A record is: u32 payload length, u32 CRC-32 of (seq ‖ payload), u64 seq, payload (the batch's
 * flat ops, v8-serialized). A torn or foreign tail fails its CRC and ends the read.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { crc32 } from 'node:zlib';

const HEADER = 16;
/** a record larger than this is not one we wrote: the read stops there */
const MAX_RECORD = 256 * 1024 * 1024;

function header(seq: number, payload: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32LE(payload.length, 0);
  h.writeBigUInt64LE(BigInt(seq), 8);
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(8, 16))), 4);
  return h;
}

/** Serializes a batch's ops for the journal (and for the writer thread: the same bytes). */
export function encodeOps(ops: unknown[]): Buffer {
  return v8.serialize(ops);
}

export function decodeOps(payload: Uint8Array): unknown[] {
  return v8.deserialize(payload) as unknown[];
}

/** The appending side, owned by the one process that records into the store (it holds the data dir's lock). */
export class JournalWriter {
  private fd: number;
  private size: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * Appends one record. Throws if it could not be written whole; the file is then cut back to
   * where it was, so a later reader does not meet half a record.
   */
  append(seq: number, payload: Uint8Array): void {
    const h = header(seq, payload);
    const start = this.size;
    try {
      writeAll(this.fd, [h, payload], HEADER + payload.length);
    } catch (err) {
      try {
        fs.ftruncateSync(this.fd, start);
      } catch {
        // the CRC still ends a read at the torn record
      }
      throw err;
    }
    this.size = start + HEADER + payload.length;
  }

  /** Empties the journal: every record in it is in the store. */
  truncate(): void {
    if (this.size === 0) return;
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = -1;
  }
}

function writeAll(fd: number, parts: Uint8Array[], total: number): void {
  let written = fs.writevSync(fd, parts);
  // a short write (a disk filling up mid-record): finish it, or fail on the next call
  while (written < total) {
    let skip = written;
    const rest: Uint8Array[] = [];
    for (const p of parts) {
      if (skip >= p.length) {
        skip -= p.length;
        continue;
      }
      rest.push(skip ? p.subarray(skip) : p);
      skip = 0;
    }
    const n = fs.writevSync(fd, rest);
    if (n === 0) throw new Error('the record journal could not be written (short write)');
    written += n;
  }
}

export interface JournalRecord {
  seq: number;
  payload: Uint8Array;
  /** where the record ends, from the start of the bytes parsed */
  end: number;
}

/** The whole records at the start of `buf`, in order; stops at the first torn or foreign one. */
export function parseRecords(buf: Buffer): JournalRecord[] {
  const out: JournalRecord[] = [];
  let off = 0;
  while (off + HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len > MAX_RECORD || off + HEADER + len > buf.length) break;
    const payload = buf.subarray(off + HEADER, off + HEADER + len);
    if (crc32(payload, crc32(buf.subarray(off + 8, off + 16))) !== buf.readUInt32LE(off + 4)) break;
    off += HEADER + len;
    out.push({ seq: Number(buf.readBigUInt64LE(off - len - 8)), payload, end: off });
  }
  return out;
}

/** The whole records of a journal file (none if there is no file). */
export function readJournal(file: string): JournalRecord[] {
  try {
    return parseRecords(fs.readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The seq of the last journal batch loaded into this store. */
