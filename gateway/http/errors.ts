/** Typed errors of the HTTP listener; messages never carry secret values or Node internals. */

export type HttpGatewayErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'blocked_by_policy'
  | 'recording_failed'
  | 'upstream_refused'
  | 'upstream_unreachable'
  | 'upstream_tls_error'
  | 'upstream_reset'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'payload_too_large'
  | 'bad_request';

export class HttpGatewayError extends Error {
  constructor(
    readonly code: HttpGatewayErrorCode,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpGatewayError';
  }

  /** The JSON body a client receives. */
  body(): string {
    return JSON.stringify({ error: { type: 'flightlog_gateway_error', code: this.code, message: this.message } });
  }
}

/** Configuration the listener cannot start with (a missing secret, an unreadable CA file). */
export class HttpListenerConfigError extends Error {
  readonly code = 'HTTP_LISTENER_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'HttpListenerConfigError';
  }
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);

/** Maps a Node error from the upstream request to what the client is told. */
export function upstreamError(err: unknown, target: string, timeoutMs: number): HttpGatewayError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (err instanceof HttpGatewayError) return err;
  if (code === 'ETIMEDOUT' || code === 'UPSTREAM_TIMEOUT') {
    return new HttpGatewayError('upstream_timeout', 504, `upstream ${target} did not answer within ${timeoutMs} ms`);
  }
  if (code === 'ECONNREFUSED') return new HttpGatewayError('upstream_refused', 502, `upstream ${target} refused the connection`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new HttpGatewayError('upstream_unreachable', 502, `upstream ${target} is unreachable (${code})`);
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /certificate|ssl|tls/i.test(e?.message ?? '')) {
    return new HttpGatewayError('upstream_tls_error', 502, `TLS handshake with upstream ${target} failed (${code || 'tls error'})`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(e?.message ?? '')) {
    return new HttpGatewayError('upstream_reset', 502, `upstream ${target} closed the connection before answering`);
  }
  return new HttpGatewayError('upstream_error', 502, `request to upstream ${target} failed (${code || 'error'})`);
}
