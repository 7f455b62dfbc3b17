/**
 * Finds the gateway token an agent presented on an HTTP request: `Authorization: Bearer`,
 * `x-api-key`, a basic-auth password (user = identity name) or a configured header.
 * No Node imports (Buffer is a global).
 */

export type TokenVia = 'bearer' | 'x-api-key' | 'basic' | 'header';

export interface PresentedCredential {
  via: TokenVia;
  /** identity name from basic auth; '' when the token alone names the identity */
  identity: string;
  token: string;
  /** the request header that carried it (stripped before forwarding) */
  header: string;
}

type Headers = Record<string, string | string[] | undefined>;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Every credential the request carries, in the order we try them. */
export function presentedCredentials(headers: Headers, tokenHeader?: string): PresentedCredential[] {
  const out: PresentedCredential[] = [];
  if (tokenHeader) {
    const name = tokenHeader.toLowerCase();
    const v = one(headers[name])?.trim();
    if (v) out.push({ via: 'header', identity: '', token: v.replace(/^Bearer\s+/i, ''), header: name });
  }
  const auth = one(headers.authorization)?.trim();
  if (auth) {
    const m = /^(\w+)\s+(.+)$/.exec(auth);
    if (m && m[1].toLowerCase() === 'bearer') {
      out.push({ via: 'bearer', identity: '', token: m[2].trim(), header: 'authorization' });
    } else if (m && m[1].toLowerCase() === 'basic') {
      const decoded = Buffer.from(m[2].trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) {
        const user = decoded.slice(0, colon);
        const token = decoded.slice(colon + 1);
        // curl -u :TOKEN sends an empty user: let the token name the identity
        if (token) out.push({ via: 'basic', identity: user, token, header: 'authorization' });
      }
    }
  }
  const key = one(headers['x-api-key'])?.trim();
  if (key) out.push({ via: 'x-api-key', identity: '', token: key, header: 'x-api-key' });
  return out;
}

/** Headers that carry a gateway credential and must never reach the upstream. */
export function gatewayCredentialHeaders(tokenHeader?: string): string[] {
  const names = ['authorization', 'x-api-key', 'proxy-authorization'];
  if (tokenHeader) names.push(tokenHeader.toLowerCase());
  return names;
}
