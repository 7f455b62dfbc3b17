/**
 * A tap on a streamed HTTP body: keeps the first `cap` bytes, the full size and a SHA-256 of
 * the whole, so memory stays flat whatever passes through; and turns the kept head into the
 * text a reviewer reads (content-encoding decoded, JSON pretty-printed, binary as base64).
 */
import { createHash, type Hash } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { Json } from '../common/types';

export class PayloadTap {
  private readonly hash: Hash = createHash('sha256');
  private chunks: Buffer[] = [];
  private kept = 0;
  private sealed: string | null = null;
  size = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    // a body can go on arriving after its exchange was recorded (the upstream answered early,
    // the client aborted): the record is closed, late bytes are not part of it
    if (this.sealed !== null) return;
    this.size += chunk.length;
    this.hash.update(chunk);
    const room = this.cap - this.kept;
    if (room <= 0) return;
    // copy so the head never pins a large pooled buffer
    const part = chunk.length > room ? Buffer.from(chunk.subarray(0, room)) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
  }

  head(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get truncated(): boolean {
    return this.size > this.kept;
  }

  /** Finishes the hash; later pushes are ignored and later calls return the same digest. */
  digest(): string {
    this.sealed ??= this.hash.digest('hex');
    return this.sealed;
  }
}

export interface BodyRecord {
  [key: string]: Json;
  size: number;
  sha256: string;
  /** the head was cut at the cap */
  truncated: boolean;
  /** 'utf8' text (decoded, JSON pretty-printed) or 'base64' for binary */
  encoding: 'utf8' | 'base64';
  /** the content-encoding that was decoded for display, if any */
  decoded: string | null;
  body: string;
}

type HeaderValue = string | string[] | number | undefined;

function headerString(v: HeaderValue): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

function decodeOnce(input: Buffer, enc: string, cap: number): Buffer {
  // a truncated head is expected: flush what decodes instead of failing on the missing end
  const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(cap, 1) };
  if (enc === 'gzip' || enc === 'x-gzip') return zlib.gunzipSync(input, opts);
  if (enc === 'deflate') {
    try {
      return zlib.inflateSync(input, opts);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
      return zlib.inflateRawSync(input, opts);
    }
  }
  if (enc === 'br') {
    return zlib.brotliDecompressSync(input, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength: Math.max(cap, 1) });
  }
  throw new Error(`unsupported content-encoding ${enc}`);
}

/**
 * Decodes a possibly truncated compressed head to at most `cap` bytes; null when it cannot.
 * zlib refuses (rather than truncates) output over the cap, so a highly compressed head is
 * decoded from a shorter prefix of its input, found by bisection: memory stays bounded.
 */
export function decodeContent(head: Buffer, contentEncoding: string, cap: number): Buffer | null {
  return decodeContentHead(head, contentEncoding, cap)?.data ?? null;
}

/** As decodeContent; `partial` says the output was cut at the cap. */
export function decodeContentHead(head: Buffer, contentEncoding: string, cap: number): { data: Buffer; partial: boolean } | null {
  const enc = contentEncoding.trim().toLowerCase();
  if (enc === '' || enc === 'identity') return { data: head, partial: false };
  if (!['gzip', 'x-gzip', 'deflate', 'br'].includes(enc)) return null;
  const tooLarge = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
  try {
    return { data: decodeOnce(head, enc, cap), partial: false };
  } catch (err) {
    if (!tooLarge(err)) return null;
  }
  let lo = 0;
  let hi = head.length;
  let best: Buffer | null = null;
  while (hi - lo > 16) {
    const mid = (lo + hi) >> 1;
    try {
      best = decodeOnce(head.subarray(0, mid), enc, cap);
      lo = mid;
    } catch (err) {
      if (!tooLarge(err)) break;
      hi = mid;
    }
  }
  return best ? { data: best, partial: true } : null;
}

const TEXT_TYPES = /^(text\/|application\/(json|[\w.+-]*\+json|x-ndjson|xml|[\w.+-]*\+xml|javascript|x-www-form-urlencoded|graphql|yaml|x-yaml|sql))/i;

/** True when the bytes look like UTF-8 text (no NULs, decodes without replacement). */
function looksLikeText(buf: Buffer): boolean {
  const sample = buf.subarray(0, 4096);
  if (sample.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample.length < buf.length ? trimPartialUtf8(sample) : sample);
    return true;
  } catch {
    return false;
  }
}

/** Drops a multi-byte UTF-8 sequence cut at the end of a head. */
function trimPartialUtf8(buf: Buffer): Buffer {
  let end = buf.length;
  for (let i = 1; i <= 3 && end - i >= 0; i++) {
    const b = buf[end - i];
    if ((b & 0xc0) === 0x80) continue;
    if ((b & 0xc0) === 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      if (i < need) end -= i;
    }
    break;
  }
  return buf.subarray(0, end);
}

/** The recorded form of one body. */
export function bodyRecord(
  tap: PayloadTap,
  sha256: string,
  headers: Record<string, HeaderValue>,
  cap: number,
): BodyRecord {
  const raw = tap.head();
  const contentEncoding = headerString(headers['content-encoding']);
  const contentType = headerString(headers['content-type']);
  const encoded = contentEncoding !== '' && contentEncoding.toLowerCase() !== 'identity';
  let decoded: string | null = null;
  let bytes: Buffer | null = raw;
  let partial = false;
  if (encoded) {
    const d = decodeContentHead(raw, contentEncoding, cap);
    bytes = d?.data ?? null;
    partial = d?.partial ?? false;
    if (bytes) decoded = contentEncoding.toLowerCase();
  }
  const base = { size: tap.size, sha256, truncated: tap.truncated || partial };
  if (bytes === null || !(TEXT_TYPES.test(contentType) || looksLikeText(bytes))) {
    return { ...base, encoding: 'base64', decoded, body: (bytes ?? raw).toString('base64') };
  }
  let text = trimPartialUtf8(bytes).toString('utf8');
  if (!base.truncated && /json/i.test(contentType)) {
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not valid JSON after all: keep it as sent
    }
  }
  return { ...base, encoding: 'utf8', decoded, body: text };
}
