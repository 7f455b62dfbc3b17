/**
 * Masking throughput on mixed text, with and without candidates, against a plain byte copy in
 * the same run. Run: node dist/test/bench/bench-mask.js  (target: >= 100 MB/s without secrets)
 */
import type { Json } from '../../gateway/common/types';
import { createMasker, createStreamMasker } from '../../gateway/masking';

const TARGET_BYTES = 32 * 1024 * 1024;

const PLAIN_LINES = [
  '2026-11-20T10:38:01.123Z INFO  request handled path=/api/v1/items?page=3 status=200 duration=12ms',
  'SELECT id, name, created_at FROM orders WHERE customer_id = 4211 AND status = \'open\' ORDER BY id LIMIT 100;',
  '  at Object.<anonymous> (/home/dev/project/src/server/index.ts:120:15)',
  '{"id": 123, "name": "widget", "price": 9.99, "tags": ["blue", "large"], "updated": "2026-01-01T00:00:00Z"}',
  'drwxr-xr-x  5 dev dev 4096 Nov 20 10:00 node_modules',
  'The build finished in 42 seconds; 318 tests passed and 2 were skipped on this machine.',
  'commit 5b400141212b62c376631129f34369aad80b891b Merge branch \'main\' into feature/export-bundle',
  'export function render(props: Props): JSX.Element { return <div className="row">{props.children}</div>; }',
  ' 42 | acme-corp      | 2026-02-01 | 1204.50 | paid',
  'GET https://registry.example.test/v2/library/node/manifests/20-slim 200 application/json',
];
/** Ordinary text that holds anchor words (key, token, secret, password, auth) but no secret. */
const CANDIDATE_LINES = [
  'The password field must be at least 12 characters; see docs/auth.md for the token format.',
  '{"max_tokens": 1024, "input_tokens": 12, "output_tokens": 400, "cache_key": "session-7"}',
  'secretName: db-credentials  # the key is read from the mounted volume',
  'PGPASSWORD=${DB_PASSWORD} psql -h db -U app -c "select 1"',
  'auth: true  token_type: Bearer  ask the operator for a key',
  'https://example.test:8443/oauth/authorize?client_id=app&redirect_uri=/cb',
];
const SECRET_LINES = [
  () => `export GITHUB_TOKEN=ghp_${rand(36)}`,
  () => `{"name": "ci", "credential": "AKIA${rand(16).toUpperCase()}", "enabled": true}`,
  () => `DATABASE_URL=postgres://app:${rand(14)}@db.internal:5432/prod`,
  () => `curl -H 'Authorization: Bearer sk-ant-api03-${rand(90)}' https://api.example.test/v1/messages`,
  () => `password: "${rand(16)}"`,
];

let seed = 12345;
function rand(n: number): string {
  const cs = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    s += cs[seed % cs.length];
  }
  return s;
}

function build(mix: (i: number) => string): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < TARGET_BYTES; i++) {
    const line = mix(i) + '\n';
    parts.push(line);
    size += line.length;
  }
  return parts.join('');
}

/** Recorded values are mostly short: column values, header values, JSON fields. */
const SHORT_VALUES = [
  'widget', '4211', 'open', 'acme-corp', '2026-01-01T00:00:00Z', 'application/json', 'curl/8.4.0', '*/*',
  'api.example.test', 'gzip, deflate, br', 'keep-alive', 'no-cache', 'paid', 'blue', 'Bob Example',
  'bob@example.test', 'https://registry.example.test/v2/library/node/manifests/20-slim', 'en-US,en;q=0.9',
  'SELECT 1', '9.99', 'true', 'Mon, 20 Nov 2026 10:38:01 GMT', 'W/"5b400141212b"', 'text/html; charset=utf-8',
];
/** Small structured values as the recorder hands them to `maskValue`: rows and header maps. */
const SMALL_OBJECTS: Json[] = [
  { id: 4211, name: 'widget', status: 'open', created_at: '2026-01-01T00:00:00Z', price: 9.99, tags: ['blue', 'large'] },
  { 'content-type': 'application/json', 'user-agent': 'curl/8.4.0', accept: '*/*', host: 'api.example.test', 'content-length': '112' },
  { customer_id: 17, email: 'bob@example.test', paid: true, note: null, total: '1204.50' },
];
const SHORT_COUNT = 400_000;

function time(fn: () => void): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

function main(): void {
  const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(1) });
  masker.addKnownSecret('upstream-credential', 'Zr8vQ2mN4pL7xK1w');
  const datasets: Array<[string, string]> = [
    ['no secrets, no anchors', build((i) => PLAIN_LINES[i % PLAIN_LINES.length])],
    ['no secrets, 1 in 5 lines has anchors', build((i) => (i % 5 === 4 ? CANDIDATE_LINES[i % CANDIDATE_LINES.length] : PLAIN_LINES[i % PLAIN_LINES.length]))],
    ['1 secret per 20 lines', build((i) => (i % 20 === 19 ? SECRET_LINES[i % SECRET_LINES.length]() : i % 5 === 4 ? CANDIDATE_LINES[i % CANDIDATE_LINES.length] : PLAIN_LINES[i % PLAIN_LINES.length]))],
  ];
  const rows: Array<[string, string, number, number]> = [];
  for (const [name, text] of datasets) {
    const bytes = Buffer.byteLength(text);
    const buf = Buffer.from(text);
    const copyMs = time(() => {
      const out = Buffer.allocUnsafe(buf.length);
      buf.copy(out);
    });
    let hits = 0;
    const maskMs = time(() => {
      hits = masker.maskText(text).hits.length;
    });
    const streamMs = time(() => {
      const s = createStreamMasker(masker, { onText: () => undefined, onHits: () => undefined, idleMs: 0 });
      for (let i = 0; i < text.length; i += 16384) s.write(text.slice(i, i + 16384));
      s.end();
    });
    const mb = bytes / 1e6;
    rows.push([name, 'byte copy', mb / (copyMs / 1000), 0]);
    rows.push([name, 'maskText', mb / (maskMs / 1000), hits]);
    rows.push([name, 'stream, 16 KiB chunks', mb / (streamMs / 1000), hits]);
  }
  // many short strings, one call each: the per-call cost, not the scan, dominates
  const shorts: string[] = [];
  for (let i = 0; i < SHORT_COUNT; i++) shorts.push(SHORT_VALUES[i % SHORT_VALUES.length]);
  const shortText = shorts.join('');
  const shortMb = Buffer.byteLength(shortText) / 1e6;
  const shortBuf = Buffer.from(shortText);
  const shortCopyMs = time(() => {
    const out = Buffer.allocUnsafe(shortBuf.length);
    shortBuf.copy(out);
  });
  let shortHits = 0;
  const shortMs = time(() => {
    shortHits = 0;
    for (const v of shorts) shortHits += masker.maskText(v).hits.length;
  });
  const shortName = `${SHORT_COUNT / 1000}k short strings (~${Math.round(shortText.length / SHORT_COUNT)} chars)`;
  rows.push([shortName, 'byte copy', shortMb / (shortCopyMs / 1000), 0]);
  rows.push([shortName, 'maskText per string', shortMb / (shortMs / 1000), shortHits]);
  const objects: Json[] = [];
  for (let i = 0; i < SHORT_COUNT / 4; i++) objects.push(SMALL_OBJECTS[i % SMALL_OBJECTS.length]);
  const objMb = objects.reduce<number>((n, o) => n + Buffer.byteLength(JSON.stringify(o)), 0) / 1e6;
  let objHits = 0;
  const objMs = time(() => {
    objHits = 0;
    for (const o of objects) objHits += masker.maskValue(o).hits.length;
  });
  const objName = `${SHORT_COUNT / 4000}k small objects (maskValue)`;
  rows.push([objName, 'maskValue per object', objMb / (objMs / 1000), objHits]);
  console.log(`  (${objName}: ${((objects.length / objMs) * 1000 / 1e6).toFixed(2)} M objects/s; ${shortName}: ${((shorts.length / shortMs) * 1000 / 1e6).toFixed(2)} M strings/s)`);

  console.log(`masking throughput (${(TARGET_BYTES / 1e6).toFixed(0)} MB per dataset, best of 3)`);
  console.log('dataset                                  | method                 |      MB/s | hits');
  console.log('-----------------------------------------+------------------------+-----------+------');
  for (const [d, m, mbps, h] of rows) {
    console.log(`${d.padEnd(40)} | ${m.padEnd(22)} | ${mbps.toFixed(0).padStart(9)} | ${m === 'byte copy' ? '' : h}`);
  }
}

main();
