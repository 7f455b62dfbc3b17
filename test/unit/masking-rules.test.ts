import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../gateway/masking';
import { TOKEN_RULES } from '../../gateway/masking/token-rules';
import { CONTEXT_ANCHORS } from '../../gateway/masking/context-rules';
import { CREDENTIAL_ANCHORS } from '../../gateway/masking/credential-rules';
import { ALNUM, B64, HEX, p, rand, ruleCases } from '../helpers/masking-fixtures';

const key = new Uint8Array(32).fill(7);
const masker = createMasker({ fingerprintKey: key });
const PLACEHOLDER = /\[MASKED:([a-z0-9:-]+):([0-9a-f]{10})\]/g;

test('every kind masks a positive and leaves its look-alike alone', () => {
  const cases = ruleCases();
  const kinds = new Set(cases.map((c) => c.kind));
  assert.ok(kinds.size >= 40, `only ${kinds.size} kinds covered`);
  for (const c of cases) {
    const r = masker.maskText(c.text);
    assert.ok(!r.text.includes(c.secret), `${c.kind}: secret left in ${JSON.stringify(r.text)}`);
    assert.ok(r.hits.some((h) => h.kind === c.kind), `${c.kind}: hits were ${JSON.stringify(r.hits)} for ${JSON.stringify(c.text)}`);
    const n = masker.maskText(c.negative);
    assert.equal(n.text, c.negative, `${c.kind}: look-alike changed: ${JSON.stringify(c.negative)}`);
  }
});

test('masked value reads [MASKED:kind:fp] with a keyed 10-hex fingerprint, stable across maskers', () => {
  const secret = p('gh', 'p_') + rand(ALNUM, 36);
  const a = masker.maskText(`token ${secret} and again ${secret}`);
  const fps = [...a.text.matchAll(PLACEHOLDER)].map((m) => m[2]);
  assert.equal(fps.length, 2);
  assert.equal(fps[0], fps[1]);
  assert.equal(a.text, `token [MASKED:github-pat:${fps[0]}] and again [MASKED:github-pat:${fps[0]}]`);
  const again = createMasker({ fingerprintKey: key }).maskText(secret);
  assert.equal(again.text, `[MASKED:github-pat:${fps[0]}]`);
  assert.equal(masker.placeholder('github-pat', secret), `[MASKED:github-pat:${fps[0]}]`);
  const otherKey = createMasker({ fingerprintKey: new Uint8Array(32).fill(9) }).maskText(secret);
  assert.notEqual(otherKey.text, again.text);
  const other = masker.maskText(p('gh', 'p_') + rand(ALNUM, 36));
  assert.notEqual(other.hits[0].fp, fps[0]);
});

test('masking is idempotent', () => {
  for (const c of ruleCases()) {
    const once = masker.maskText(c.text).text;
    assert.equal(masker.maskText(once).text, once, c.kind);
  }
});

test('assignments across formats', () => {
  const pw = 'S3cr3t!' + rand(ALNUM, 6);
  const forms = [
    `PGPASSWORD=${pw}\nHOME=/home/dev\n`,
    `export DB_PASSWORD="${pw}"\n`,
    `database:\n  user: app\n  password: "${pw}"\n`,
    `  password: ${pw}\n`,
    `{"user":"app","password":"${pw}"}`,
    `{\\"password\\": \\"${pw}\\"}`,
    `[client]\npassword = ${pw}\n`,
    `db.password=${pw}\n`,
    `mysql --password=${pw} -h db\n`,
    `docker login --password ${pw} registry\n`,
    `ALTER ROLE app WITH PASSWORD '${pw}';`,
    `CREATE USER 'app'@'%' IDENTIFIED BY '${pw}';`,
    `machine api.example.test login bot password ${pw}\n`,
    `GET /login?user=bob&password=${pw}&next=/ 302\n`,
    `Server=db;Database=app;User Id=sa;Password=${pw};\n`,
    `curl -u admin:${pw} https://example.test\n`,
    `$env:DB_PASSWORD = "${pw}"\n`,
    `password := "${pw}"\n`,
    `'password' => '${pw}',\n`,
    `redis://:${pw}@cache:6379/0\n`,
    `mongodb+srv://app:${pw}@cluster0.example.net/db\n`,
  ];
  for (const f of forms) {
    const r = masker.maskText(f);
    assert.ok(!r.text.includes(pw), `left in ${JSON.stringify(f)} -> ${JSON.stringify(r.text)}`);
  }
});

test('assignment look-alikes stay as they are', () => {
  const negatives = [
    'PGPASSWORD=${DB_PASSWORD}\nAPI_KEY=<your-api-key>\n',
    'The password field must be at least 12 characters; see docs/auth.md for the token format.\n',
    ' id | email | password_reset_at\n----+-------+------------------\n  1 | a@b.test | 2026-01-02 03:04:05\n(1 row)\n',
    '{"max_tokens": 1024, "input_tokens": 12, "output_tokens": 400}',
    '{"nextPageToken": "CAEQAA", "token_type": "Bearer"}',
    'secretName: db-credentials\nsecretKeyRef:\n  name: app\n',
    'PWD=/home/dev/project\nOLDPWD=/home/dev\n',
    'password = os.environ["DB_PASSWORD"]\n',
    'const password = req.body.password;\n',
    'token = get_token()\n',
    'if (!token) throw new Error("no token");\n',
    'auth: true\nauth_method: token\n',
    'ssh_key: ~/.ssh/id_ed25519\n',
    'password: ********\n',
    'Passed 12 tests, 0 failed\n',
    'git push -u origin main\n',
    'https://example.test:8443/path?x=1\n',
    'sha256:6b50ac2f86702824c1c099724caf4941d4072014b3ce107f80e222f828767efc\n',
    // a bind parameter is where a value will go, not the value
    'UPDATE users SET password = $1 WHERE id = $2\n',
  ];
  for (const n of negatives) assert.equal(masker.maskText(n).text, n, JSON.stringify(n));
});

test('psql and mysql tables with secret columns', () => {
  const pw = 'E!xd' + rand(ALNUM, 10);
  const psql = ` id | username | password\n----+----------+----------\n  7 | admin    | ${pw}\n  8 | bob      | ${pw}x\n(2 rows)\n`;
  const r = masker.maskText(psql);
  assert.ok(!r.text.includes(pw), r.text);
  assert.ok(r.text.includes('admin'));
  assert.equal(r.hits.length, 2);
  const mysql = `+----+----------+\n| id | api_key  |\n+----+----------+\n|  1 | ${pw} |\n+----+----------+\n`;
  assert.ok(!masker.maskText(mysql).text.includes(pw));
  const single = ` password \n----------\n ${pw}\n(1 row)\n`;
  assert.ok(!masker.maskText(single).text.includes(pw));
});

test('PEM private keys of any label, including JSON-escaped and cut short', () => {
  for (const label of ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'PGP PRIVATE KEY BLOCK']) {
    const body = rand(B64, 64);
    const block = `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`;
    const r = masker.maskText(`before\n${block}\nafter`);
    assert.equal(r.text, `before\n[MASKED:private-key:${r.hits[0].fp}]\nafter`);
    const json = JSON.stringify({ type: 'service_account', private_key: block + '\n' });
    assert.ok(!masker.maskText(json).text.includes(body), label);
  }
  const cut = `-----BEGIN RSA PRIVATE KEY-----\n${rand(B64, 64)}\n${rand(B64, 30)}`;
  assert.match(masker.maskText(cut).text, /^\[MASKED:private-key:[0-9a-f]{10}\]$/);
});

test('Kubernetes Secret manifests in YAML and JSON text', () => {
  const pw = 'pw-' + rand(ALNUM, 12);
  const b64 = Buffer.from(pw).toString('base64');
  const yaml = `apiVersion: v1\ndata:\n  password: ${b64}\n  username: YXBw\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  extra: "${pw}"\ntype: Opaque\n`;
  const r = masker.maskText(yaml);
  assert.ok(!r.text.includes(b64) && !r.text.includes(pw), r.text);
  assert.ok(r.text.includes('name: db'));
  const fp = createMasker({ fingerprintKey: key }).fingerprint(pw);
  assert.ok(r.text.includes(`[MASKED:k8s-secret:${fp}]`), 'data value fingerprint is that of the decoded secret');
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', data: { token: b64 } }, null, 2);
  assert.ok(!masker.maskText(json).text.includes(b64));
  const cm = 'apiVersion: v1\nkind: ConfigMap\ndata:\n  mode: fast\n';
  assert.equal(masker.maskText(cm).text, cm);
});

test('every rule finishes fast on adversarial input (no catastrophic backtracking)', () => {
  const size = 100 * 1024;
  const fill = (unit: string): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  const anchors = new Set<string>();
  for (const r of TOKEN_RULES) for (const a of r.anchors) anchors.add(a);
  for (const c of [...CONTEXT_ANCHORS, ...CREDENTIAL_ANCHORS]) for (const a of c.anchors) anchors.add(a);
  const inputs: string[] = [
    fill('a'), fill('A1'), fill('-'), fill('='), fill(' '), fill(':'), fill('|'), fill('\n'), fill('"'), fill('\\"'),
    fill('password='), fill('password: "'), fill('token '), fill('a:'), fill('@'), fill('://a:b'), fill('x://'),
    fill('-----BEGIN '), fill('-----BEGIN RSA PRIVATE KEY-----\n'), fill('eyJ.'), fill('eyJa.eyJb.'), fill('key-'),
    fill(' |\n---+---\n'), fill('kind: Secret\ndata:\n  a: b\n'), fill('"data": {"a": "b", '), fill('0123456789:AA'),
    fill('sig='), fill('aQ~'), 'password' + '|'.repeat(size) + '\n' + '-'.repeat(size),
    fill('mysql -p'), fill('docker login -p '), fill('sqlplus a/'), fill('cat .pgpass\n'), fill('a:5432:b:c:d\n'), fill('a:5432:'),
    fill('AKIAABCDEFGHIJKLMNOP '), 'AKIAABCDEFGHIJKLMNOP ' + fill('aB3'), fill('curl -u "'), fill("sshpass -p '"), fill('Uid=a;Pwd='),
  ];
  for (const a of anchors) {
    const upper = a.toUpperCase();
    inputs.push(fill(a), fill(upper + '0'), a + 'A'.repeat(size), a + '-'.repeat(size));
  }
  // warm the JIT up on small copies so the bound measures backtracking, not compilation
  for (const input of inputs) masker.maskText(input.slice(0, 2048));
  let worst = 0;
  let worstInput = '';
  for (const input of inputs) {
    // backtracking is slow on every run, a busy machine only sometimes: keep the best of up to 3
    let ms = Infinity;
    for (let run = 0; run < 3 && ms > 50; run++) {
      const t0 = process.hrtime.bigint();
      masker.maskText(input);
      ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    if (ms > worst) {
      worst = ms;
      worstInput = input.slice(0, 40);
    }
  }
  console.log(`adversarial: ${inputs.length} inputs of ${size} chars, slowest ${worst.toFixed(1)} ms`);
  assert.ok(worst < 200, `slowest input took ${worst.toFixed(1)} ms: ${JSON.stringify(worstInput)}`);
});

test('hits and masks of many kinds in one text are all reported', () => {
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const aws = p('AK', 'IA') + rand('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16);
  const r = masker.maskText(`a ${gh} b ${aws} c sha=${rand(HEX, 40)}`);
  assert.deepEqual(r.hits.map((h) => h.kind), ['github-pat', 'aws-access-key-id']);
});
