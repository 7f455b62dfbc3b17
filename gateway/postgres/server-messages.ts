/**
 * Decoders for the backend messages the recorder needs. The relay forwards server bytes as they
 * arrive and frames them alongside; only the few message kinds that carry recorded facts are
 * decoded (DataRow only for the head rows), so the per-row cost stays a header read and a hash.
 */
import { ProtocolError } from './client-messages';

export interface Column {
  name: string;
  typeOid: number;
  format: number;
}

export function decodeRowDescription(buf: Buffer, start: number, end: number): Column[] {
  let pos = start;
  const n = buf.readInt16BE(pos);
  pos += 2;
  const cols: Column[] = [];
  for (let i = 0; i < n; i++) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0 || nul >= end) throw new ProtocolError('malformed RowDescription from server');
    const name = buf.toString('utf8', pos, nul);
    pos = nul + 1;
    const typeOid = buf.readUInt32BE(pos + 6);
    const format = buf.readInt16BE(pos + 16);
    pos += 18;
    cols.push({ name, typeOid, format });
  }
  return cols;
}

/** Raw column values of a DataRow: subarrays into buf, or null. */
export function decodeDataRow(buf: Buffer, start: number, end: number): (Buffer | null)[] {
  let pos = start;
  const n = buf.readInt16BE(pos);
  pos += 2;
  const out: (Buffer | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = buf.readInt32BE(pos);
    pos += 4;
    if (len < 0) out[i] = null;
    else {
      if (pos + len > end) throw new ProtocolError('malformed DataRow from server');
      out[i] = buf.subarray(pos, pos + len);
      pos += len;
    }
  }
  return out;
}

/** Encodes a DataRow body-and-header from values (used by live masking). */
export function encodeDataRow(values: (Buffer | null)[]): Buffer {
  let size = 4 + 2;
  for (const v of values) size += 4 + (v ? v.length : 0);
  const out = Buffer.allocUnsafe(1 + size);
  out[0] = 0x44;
  out.writeInt32BE(size, 1);
  out.writeInt16BE(values.length, 5);
  let pos = 7;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, pos);
      pos += 4;
    } else {
      out.writeInt32BE(v.length, pos);
      pos += 4;
      v.copy(out, pos);
      pos += v.length;
    }
  }
  return out;
}

export function decodeCString(buf: Buffer, start: number, end: number): string {
  let nul = buf.indexOf(0, start);
  if (nul < 0 || nul > end) nul = end;
  return buf.toString('utf8', start, nul);
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter code. */
export function decodeFields(buf: Buffer, start: number, end: number): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = start;
  while (pos < end && buf[pos] !== 0) {
    const code = String.fromCharCode(buf[pos]);
    const nul = buf.indexOf(0, pos + 1);
    if (nul < 0 || nul >= end) break;
    out[code] = buf.toString('utf8', pos + 1, nul);
    pos = nul + 1;
  }
  return out;
}

export interface Notification {
  pid: number;
  channel: string;
  payload: string;
}

export function decodeNotification(buf: Buffer, start: number, end: number): Notification {
  const pid = buf.readInt32BE(start);
  const nul = buf.indexOf(0, start + 4);
  const channel = buf.toString('utf8', start + 4, nul);
  const payload = decodeCString(buf, nul + 1, end);
  return { pid, channel, payload };
}

const INT_TYPES: Record<number, number> = { 21: 2, 23: 4, 20: 8 };

/** A value as a reviewer reads it: text as is, binary ints/bools/floats decoded, other binary as \x hex. */
export function renderValue(value: Buffer | null, format: number, typeOid: number, maxLen: number): string | null {
  if (value === null) return null;
  if (format === 0) {
    const s = value.toString('utf8', 0, Math.min(value.length, maxLen));
    return value.length > maxLen ? s + '…' : s;
  }
  const size = INT_TYPES[typeOid];
  if (size && value.length === size) {
    if (size === 2) return String(value.readInt16BE(0));
    if (size === 4) return String(value.readInt32BE(0));
    return value.readBigInt64BE(0).toString();
  }
  if (typeOid === 16 && value.length === 1) return value[0] ? 'true' : 'false';
  if (typeOid === 701 && value.length === 8) return String(value.readDoubleBE(0));
  if (typeOid === 700 && value.length === 4) return String(value.readFloatBE(0));
  if ((typeOid === 25 || typeOid === 1043 || typeOid === 19 || typeOid === 114 || typeOid === 3802) && format === 1) {
    // text-like types are sent verbatim in binary too
    const v = typeOid === 3802 && value[0] === 1 ? value.subarray(1) : value;
    const s = v.toString('utf8', 0, Math.min(v.length, maxLen));
    return v.length > maxLen ? s + '…' : s;
  }
  const hexLen = Math.min(value.length, maxLen >> 1);
  return '\\x' + value.toString('hex', 0, hexLen) + (value.length > hexLen ? '…' : '');
}
