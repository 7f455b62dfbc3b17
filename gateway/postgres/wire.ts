/** Builders for the few backend/frontend messages the gateway writes itself (PostgreSQL protocol 3.0). */

export const PROTOCOL_3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** A typed message: 1 type byte, int32 length (self-inclusive), body. */
export function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

export function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n | 0, 0);
  return b;
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse with S, V, C, M (and D, H) fields. */
export function errorResponse(f: ErrorFields): Buffer {
  const parts = [
    Buffer.from('S'), cstr(f.severity),
    Buffer.from('V'), cstr(f.severity),
    Buffer.from('C'), cstr(f.code),
    Buffer.from('M'), cstr(f.message),
  ];
  if (f.detail) parts.push(Buffer.from('D'), cstr(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstr(f.hint));
  parts.push(Buffer.from([0]));
  return message('E', Buffer.concat(parts));
}

export function authRequest(code: number, extra?: Buffer): Buffer {
  return message('R', extra ? Buffer.concat([int32(code), extra]) : int32(code));
}

export function readyForQuery(txStatus: string): Buffer {
  return message('Z', Buffer.from(txStatus || 'I', 'latin1'));
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return message('K', Buffer.concat([int32(pid), int32(secret)]));
}

/** StartupMessage (untyped): length, protocol, key\0value\0 … \0 */
export function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [int32(PROTOCOL_3)];
  for (const [k, v] of Object.entries(params)) parts.push(cstr(k), cstr(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function sslRequest(): Buffer {
  return Buffer.concat([int32(8), int32(SSL_REQUEST)]);
}

export function cancelRequest(pid: number, secret: number): Buffer {
  return Buffer.concat([int32(16), int32(CANCEL_REQUEST), int32(pid), int32(secret)]);
}

export function passwordMessage(password: string): Buffer {
  return message('p', cstr(password));
}

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return message('p', Buffer.concat([cstr(mechanism), int32(data.length), data]));
}

export function saslResponse(data: Buffer): Buffer {
  return message('p', data);
}

export function terminate(): Buffer {
  return message('X', Buffer.alloc(0));
}
