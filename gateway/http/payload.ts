/**
 * A tap on a streamed HTTP body: keeps the first `cap` bytes, the full size and a SHA-256 of
 * the whole, so memory stays flat whatever passes through; and turns the kept head into the
 * text a reviewer reads (content-encoding decoded, JSON pretty-printed, binary as base64).
 */
import { createHash, type Hash } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { Json } from '../core/types';

export class PayloadTap {
  private readonly hash: Hash = createHash('sha256');
  private chunks: Buffer[] = [];
  private kept = 0;
  size = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
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

  /** Finishes the hash; call once. */
  digest(): string {
    return this.hash.digest('hex');
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

/** Decodes a possibly truncated compressed head; returns null when it cannot. */
export function decodeContent(head: Buffer, contentEncoding: string, cap: number): Buffer | null {
  const enc = contentEncoding.trim().toLowerCase();
  if (enc === '' || enc === 'identity') return head;
  // a truncated head is expected: flush what decodes instead of failing on the missing end
  const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(cap, 1) };
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return zlib.gunzipSync(head, opts);
    if (enc === 'deflate') {
      try {
        return zlib.inflateSync(head, opts);
      } catch {
        return zlib.inflateRawSync(head, opts);
      }
    }
    if (enc === 'br') {
      return zlib.brotliDecompressSync(head, {
        finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
        maxOutputLength: Math.max(cap, 1),
      });
    }
  } catch (err) {
    // maxOutputLength reached still means we have a usable head; anything else is undecodable
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
    return null;
  }
  return null;
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
  if (encoded) {
    const d = decodeContent(raw, contentEncoding, cap);
    bytes = d && d.length > cap ? d.subarray(0, cap) : d;
    if (bytes) decoded = contentEncoding.toLowerCase();
  }
  const base = { size: tap.size, sha256, truncated: tap.truncated || (decoded !== null && bytes !== null && bytes.length >= cap) };
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
