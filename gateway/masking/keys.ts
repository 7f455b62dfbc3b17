/**
 * Which key, column or header names mark a secret, and which values under them are real
 * secrets rather than placeholders, references or prose. Shared by the text rules
 * (`key = value` assignments, psql tables) and structural masking (JSON keys, columns).
 */

export interface KeyClass {
  /** finding kind for a value under this key */
  kind: string;
  /** a password-like key: short values count too */
  password: boolean;
  /** a key that only sometimes holds a secret (`auth`, `STRIPE_KEY`): the value must look random */
  weak: boolean;
  /** an HTTP header with its own value grammar */
  header?: 'authorization' | 'cookie' | 'set-cookie' | 'token';
}

const PASSWORD_WORDS = new Set(['password', 'passwd', 'passphrase', 'pass', 'passwords']);
/** Environment variables that clients read a password from, whose names hold no password word. */
const PASSWORD_ENV_NAMES = new Set(['sshpass', 'rediscli_auth', 'isql_password', 'ldappasswd']);
const STRONG_WORDS = new Set([
  'secret', 'secrets', 'token', 'credential', 'credentials', 'creds', 'apikey', 'authtoken', 'accesstoken',
  'privatekey', 'secretkey', 'accesskey', 'accountkey', 'sessionid', 'sessiontoken',
]);
/** `<word>_key` is a secret when <word> is one of these */
const KEY_QUALIFIERS = new Set([
  'api', 'access', 'secret', 'private', 'signing', 'sign', 'encryption', 'encrypt', 'crypt', 'master', 'account',
  'auth', 'client', 'session', 'service', 'license', 'shared', 'storage', 'app', 'sas', 'subscription',
  'webhook', 'hmac', 'jwt', 'admin', 'root', 'server', 'consumer', 'write', 'read', 'ingest', 'personal',
  'cipher', 'decryption', 'sshprivate', 'deploy',
]);
const PUBLIC_KEY_QUALIFIERS = new Set(['public', 'pub', 'host']);
/** `<word>_token` names that hold cursors or counts, not credentials */
const TOKEN_NON_SECRET_QUALIFIERS = new Set([
  'page', 'next', 'continuation', 'max', 'num', 'input', 'output', 'completion', 'prompt', 'total', 'cached',
  'reasoning', 'sync', 'resume', 'cursor', 'stop', 'eos', 'bos', 'pad', 'unk', 'sep', 'mask', 'special',
]);
const SECRET_SUFFIXES = ['password', 'passwd', 'passphrase', 'secret', 'token', 'apikey', 'privatekey', 'secretkey', 'accesskey'];

const HEADER_TOKENS = new Set([
  'x-api-key', 'api-key', 'x-auth-token', 'x-access-token', 'private-token', 'x-vault-token', 'x-goog-api-key',
  'x-amz-security-token', 'x-functions-key', 'ocp-apim-subscription-key', 'x-figma-token', 'x-gitlab-token',
]);

/** Splits `AWS_SECRET_ACCESS_KEY`, `apiKey`, `x-api-key`, `PGPASSWORD` into lowercase segments. */
export function keySegments(key: string): string[] {
  const spaced = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2');
  return spaced.split(/[^A-Za-z0-9]+/).filter((s) => s.length > 0).map((s) => s.toLowerCase());
}

const classCache = new Map<string, KeyClass | null>();
const CLASS_CACHE_MAX = 10_000;

/**
 * Classifies a key/column/header name; null when it does not name a secret. Recording asks
 * about the same few column and header names for every row and request: the answers are cached.
 */
export function classifySecretKey(key: string): KeyClass | null {
  const hit = classCache.get(key);
  if (hit !== undefined) return hit;
  const result = classifyUncached(key);
  if (classCache.size >= CLASS_CACHE_MAX) classCache.clear();
  classCache.set(key, result === null ? null : Object.freeze(result));
  return result === null ? null : (classCache.get(key) as KeyClass);
}

function classifyUncached(key: string): KeyClass | null {
  if (key.length === 0 || key.length > 100) return null;
  const lower = key.toLowerCase();
  if (lower === 'authorization' || lower === 'proxy-authorization') {
    return { kind: 'authorization-header', password: false, weak: false, header: 'authorization' };
  }
  if (lower === 'cookie') return { kind: 'cookie', password: false, weak: false, header: 'cookie' };
  if (lower === 'set-cookie') return { kind: 'cookie', password: false, weak: false, header: 'set-cookie' };
  if (HEADER_TOKENS.has(lower)) {
    return { kind: lower === 'x-amz-security-token' ? 'aws-session-token' : 'api-key-header', password: false, weak: false, header: 'token' };
  }
  if (PASSWORD_ENV_NAMES.has(lower)) return { kind: 'password', password: true, weak: false };
  // command-line flags: `-storepass`, `-keypass`, `--pass`
  if (lower.startsWith('-') && lower.endsWith('pass') && !lower.endsWith('bypass')) return { kind: 'password', password: true, weak: false };
  const segs = keySegments(key);
  if (segs.length === 0) return null;
  const last = segs[segs.length - 1];
  const prev = segs.length > 1 ? segs[segs.length - 2] : '';
  const joined = segs.join('');

  if (PASSWORD_WORDS.has(last) || last.endsWith('password') || last.endsWith('passwd') || last.endsWith('passphrase')) {
    return { kind: 'password', password: true, weak: false };
  }
  // PWD alone is the shell's working directory; MYSQL_PWD is a password
  if (last === 'pwd' && prev !== '' && prev !== 'old') return { kind: 'password', password: true, weak: false };

  // A public or host key is published by design (`hostKey`, `public_key`): never a secret.
  if (last === 'key' && PUBLIC_KEY_QUALIFIERS.has(prev)) return null;
  let strong = STRONG_WORDS.has(last);
  let weak = false;
  if (!strong && last === 'key') {
    if (KEY_QUALIFIERS.has(prev)) strong = true;
    else if (prev !== '') weak = true;
  } else if (!strong && (last === 'auth' || last === 'authorization' || last === 'apitoken' || last === 'dsn')) {
    weak = true;
  } else if (!strong && SECRET_SUFFIXES.some((s) => last.endsWith(s) && last.length > s.length)) {
    strong = true;
  }
  if (last === 'token' && TOKEN_NON_SECRET_QUALIFIERS.has(prev)) return null;
  if (!strong && !weak) return null;
  return { kind: kindForKey(joined, last), password: false, weak };
}

function kindForKey(joined: string, last: string): string {
  if (joined.includes('aws') && joined.includes('secret')) return 'aws-secret-access-key';
  if (joined.endsWith('secretaccesskey')) return 'aws-secret-access-key';
  if (joined.includes('aws') && (joined.includes('sessiontoken') || joined.includes('securitytoken'))) return 'aws-session-token';
  if (joined.endsWith('accountkey')) return 'azure-storage-key';
  if (joined.endsWith('sharedaccesskey')) return 'azure-shared-access-key';
  if (joined.endsWith('privatekey')) return 'private-key';
  if (joined.endsWith('clientsecret')) return 'client-secret';
  if (last === 'apikey' || joined.endsWith('apikey')) return 'generic-api-key';
  return 'generic-secret';
}

/** References to a secret kept elsewhere (a variable, a template, a vault, a secret manager): not the secret. */
const REFERENCE_PARTS = [
  '\\$\\{[^}]*\\}', '\\$\\{\\{.*\\}\\}', '\\$\\([^)]*\\)', '#\\{[^}]*\\}', '%\\([A-Za-z_]*\\)s', '\\{\\{.*\\}\\}',
  'vault:[\\w./-]+(?:#[\\w.-]+)?', 'ref\\+[a-z0-9]+://\\S+', 'op://\\S+', 'arn:aws:(?:secretsmanager|ssm):\\S+',
  'projects/[\\w-]+/secrets/\\S+', '@Microsoft\\.KeyVault\\(.*\\)', 'azurekeyvault://\\S+', 'secretref:\\S+', 'sops:\\S+',
];
/** in a column or JSON field a bare `$word` or `%word%` may be the password itself, so only these count there */
const REFERENCE = new RegExp(`^(?:${REFERENCE_PARTS.join('|')})$`, 'i');
const PLACEHOLDER = new RegExp(
  '^(?:' +
    [
      ...REFERENCE_PARTS, '\\$[A-Za-z_][A-Za-z0-9_]*', '\\$\\d+', '%[A-Za-z_][A-Za-z0-9_]*%', '%s', '<[^<>]*>',
      '\\*+', '[xX]{3,}', '\\.{3,}', '\u2026', '#+', '-+', '_+', '\\?+',
      'null', 'nil', 'none', 'undefined', 'true', 'false', 'yes', 'no', 'on', 'off', 'n/a',
      'redacted', '\\[redacted\\]', '\\[filtered\\]', '\\[hidden\\]', 'hidden', 'masked', 'secret', 'password', 'token',
      'your[-_ ].*', '.*[-_]here', 'process\\.env\\..*', 'os\\.environ.*', 'env\\(.*', 'ENV\\[.*', 'System\\.getenv.*',
      '\\[MASKED:.*',
      // well-known placeholders and published defaults: masking them hides nothing and buries real findings
      'change[-_]?me', 'change[-_]?it', 'replace[-_]?me', 'example', 'dummy', 'placeholder', 'fixme', 'todo', 'tbd',
    ].join('|') +
    ')$',
  'i',
);

const BARE_REFERENCE = /^(?:\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%)$/;

/** A reference to a secret kept elsewhere (`${VAR}`, `$VAR`, `${{ secrets.X }}`, `vault:…`), not a secret. */
export function isReference(value: string): boolean {
  const v = value.trim();
  return REFERENCE.test(v) || BARE_REFERENCE.test(v);
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** True for values that look machine-generated: long enough, mixed, and random. */
export function looksRandom(v: string): boolean {
  if (v.length < 16 || /\s/.test(v)) return false;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return false;
  const classes = (/[a-z]/.test(v) ? 1 : 0) + (/[A-Z]/.test(v) ? 1 : 0) + (/[0-9]/.test(v) ? 1 : 0);
  if (classes < 2) return false;
  return entropy(v) >= 3.2;
}

/**
 * Whether a value found under a secret-naming key is a secret worth masking.
 * `structural` is for columns and JSON fields, where the key is certain, so only
 * empty values, references and placeholders are let through.
 */
export function acceptSecretValue(value: string, cls: KeyClass, opts: { structural?: boolean; unquoted?: boolean } = {}): boolean {
  const v = value.trim();
  if (v.length === 0) return false;
  if (v.startsWith('[MASKED:')) return false;
  // a column or field whose key is certain: its value is the secret unless it names one kept elsewhere
  if (opts.structural) return !REFERENCE.test(v) && (!(cls.weak && !looksRandom(v)) || cls.password);
  if (PLACEHOLDER.test(v)) return false;
  if (cls.password) return v.length >= 2 && !(opts.unquoted && isMemberExpression(v)) && !/^[A-Za-z_$][\w$.]*\(.*\)$/.test(v);
  if (isPathLike(v)) return false;
  if (cls.weak) return looksRandom(v);
  if (v.length < 8) return false;
  if (/^\d+$/.test(v)) return false;
  // lowercase words joined by dashes are names of secrets (`secretName: db-creds`), not secrets
  if (/^[a-z]+(?:[-_.][a-z]+)*$/.test(v)) return false;
  if (/^[A-Za-z_$][\w$.]*\(.*\)$/.test(v)) return false;
  if (opts.unquoted && isMemberExpression(v)) return false;
  return true;
}

/**
 * A password value that reaches the end of a stream's buffer may be one still arriving (typed, or
 * cut by a chunk): `No` may become `Nop4ss`, `%AA` may become `%AA6x`. It is held (and masked if
 * the stream goes idle) rather than emitted: emitting it would leak its first chars. Only a
 * complete reference (`$VAR`, `${VAR}`, `%VAR%`) goes out, since what follows cannot make it a secret.
 */
export function mayBeArriving(value: string): boolean {
  return value.length > 0 && !isReference(value);
}

/**
 * Code that reads a secret (`config.db.password`, `settings.DB_PASS`, `this.secret()`), not a
 * password with a dot in it: no part mixes lower case, upper case and digits as `dtIQ4g.Y1TIOD2` does.
 */
function isMemberExpression(v: string): boolean {
  if (!/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?:\(\))?$/.test(v)) return false;
  return !v.split('.').some((part) => /[a-z]/.test(part) && /[A-Z]/.test(part) && /[0-9]/.test(part));
}

/** A file path (`~/.ssh/id_ed25519`), not a base64 secret that happens to start with `/`. */
function isPathLike(v: string): boolean {
  if (!/^(?:\/|~\/|\.\.?\/)[\w./-]*$/.test(v)) return false;
  return v.split('/').every((seg) => seg.length <= 20 || !(/[A-Z]/.test(seg) && /[a-z]/.test(seg) && /[0-9]/.test(seg)));
}
