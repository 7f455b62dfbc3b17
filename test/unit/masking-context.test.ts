import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker, createStreamMasker } from '../../gateway/masking';
import type { SecretHit } from '../../gateway/common/types';
import fc from 'fast-check';
import { awsSecretKey, contextNegatives, contextPositives, p, rand, UPPER_NUM } from '../helpers/masking-fixtures';

const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(5) });
const MASK = /\[MASKED:([a-z0-9:-]+):[0-9a-f]{10}\]/g;

test('credentials named only by their context are masked, and only the secret: the command still reads', () => {
  for (const c of contextPositives()) {
    const r = masker.maskText(c.text);
    for (const s of c.secrets) assert.ok(!r.text.includes(s.value), `${c.name}: ${JSON.stringify(s.value)} left in ${JSON.stringify(r.text)}`);
    assert.deepEqual(r.hits.map((h) => h.kind).sort(), c.secrets.map((s) => s.kind).sort(), `${c.name}: ${JSON.stringify(r.text)}`);
    // the rest of the text is exactly as it was
    let expected = c.text;
    for (const s of c.secrets) expected = expected.split(s.value).join('\u0000');
    assert.equal(r.text.replace(MASK, '\u0000'), expected, c.name);
  }
});

test('references, placeholders and public material are left as they are, with no finding', () => {
  for (const n of contextNegatives()) {
    const r = masker.maskText(n);
    assert.equal(r.text, n);
    assert.deepEqual(r.hits, [], JSON.stringify(n));
  }
});

test('a reference under a secret key stays readable in structured values too', () => {
  const pw = 'Pw-' + rand(UPPER_NUM, 10);
  const r = masker.maskValue({ password: '${{ secrets.DB_PASSWORD }}', token: 'vault:secret/data/app#token', api_key: '{{ .Values.apiKey }}', db_password: pw });
  assert.deepEqual(r.value, { password: '${{ secrets.DB_PASSWORD }}', token: 'vault:secret/data/app#token', api_key: '{{ .Values.apiKey }}', db_password: masker.placeholder('password', pw) });
  assert.deepEqual(r.hits.map((h) => h.kind), ['password']);
});

test('the partner of an AWS key id is masked and reported; hashes and far-off strings are not', () => {
  const id = p('AK', 'IA') + rand(UPPER_NUM, 16);
  const secret = awsSecretKey();
  for (const text of [`aws creds: ${id} / ${secret}`, `${secret} ${id}`, `bot,,${id},${secret},https://console.example.test\n`, `id ${id}\nkey ${secret}\n`]) {
    const r = masker.maskText(text);
    assert.ok(!r.text.includes(secret) && !r.text.includes(id), r.text);
    assert.deepEqual(r.hits.map((h) => h.kind).sort(), ['aws-access-key-id', 'aws-secret-access-key']);
  }
  const sha = rand('0123456789abcdef', 40);
  const far = `${id} ${'.'.repeat(120)} ${secret}`;
  for (const text of [`${id} commit ${sha}`, far]) {
    const r = masker.maskText(text);
    assert.deepEqual(r.hits.map((h) => h.kind), ['aws-access-key-id'], text);
    assert.ok(r.text.endsWith(text.slice(text.length - 40)), r.text);
  }
});

function runSplit(text: string, cuts: number[]): { out: string; hits: SecretHit[] } {
  let out = '';
  const hits: SecretHit[] = [];
  const s = createStreamMasker(masker, { onText: (t) => (out += t), onHits: (h) => hits.push(...h), idleMs: 0 });
  let last = 0;
  for (const c of cuts) {
    s.write(text.slice(last, c));
    last = c;
  }
  s.write(text.slice(last));
  s.end();
  return { out, hits };
}

test('streaming: a context-named credential split at any offset is masked, not a char of it emitted', () => {
  const samples = contextPositives().filter((c) => c.stream);
  assert.ok(samples.length >= 8);
  for (const c of samples) {
    const whole = masker.maskText(c.text);
    for (let i = 1; i < c.text.length; i++) {
      const { out, hits } = runSplit(c.text, [i]);
      if (c.secrets.some((s) => s.kind === 'aws-access-key-id')) {
        // the public `AKIA` of a key id may go out before the rest arrives, as with every prefixed token
        for (const s of c.secrets) for (let k = 1; k + 4 <= s.value.length; k++) assert.ok(!out.includes(s.value.slice(k, k + 4)), `${c.name}, split at ${i}: ${out}`);
      } else {
        assert.equal(out, whole.text, `${c.name}, split at ${i}`);
      }
      assert.deepEqual(hits.map((h) => h.kind), whole.hits.map((h) => h.kind), `${c.name}, split at ${i}`);
    }
  }
});

test('streaming: a password typed one character at a time after its flag never goes out raw', () => {
  const pw = 'Tq' + rand(UPPER_NUM, 10) + 'z';
  for (const text of [`mysql -uroot -p${pw} app\r\n`, `sshpass -p ${pw} ssh web-1\r\n`, `PGPASSWORD=${pw} psql\r\n`]) {
    const cuts = Array.from({ length: text.length - 1 }, (_, i) => i + 1);
    const { out } = runSplit(text, cuts);
    assert.equal(out, masker.maskText(text).text, text);
    assert.ok(!out.includes(pw[0] + pw[1]), out);
  }
});

test('streaming: the partner of a key id is held while it arrives; cut short, it is masked on idle flush', async () => {
  const id = p('AK', 'IA') + rand(UPPER_NUM, 16);
  const secret = awsSecretKey();
  let out = '';
  const s = createStreamMasker(masker, { onText: (t) => (out += t), onHits: () => undefined, idleMs: 20 });
  s.write(`creds ${id} / ${secret.slice(0, 25)}`);
  assert.ok(!out.includes(secret.slice(0, 4)), out);
  await new Promise((r) => setTimeout(r, 80));
  assert.match(out, /^creds \[MASKED:aws-access-key-id:[0-9a-f]{10}\] \/ \[MASKED:aws-secret-access-key:[0-9a-f]{10}\]$/);
  s.end();
  // an ordinary word after an id is held no longer than the idle flush and goes out as it is
  out = '';
  const t = createStreamMasker(masker, { onText: (x) => (out += x), onHits: () => undefined, idleMs: 20 });
  t.write(`user ${id} region`);
  await new Promise((r) => setTimeout(r, 80));
  assert.match(out, /^user \[MASKED:aws-access-key-id:[0-9a-f]{10}\] region$/);
  t.end();
});

test('property: any password after a client flag is masked whole, however the stream is cut', () => {
  const chars = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%+.:=@^_~'];
  const password = fc
    .string({ unit: fc.constantFrom(...chars), minLength: 2, maxLength: 40 })
    .filter((v) => /[0-9]/.test(v) && /[A-Za-z]/.test(v) && !/^(?:your[-_ ]|vault:|op:|sops:|secretref:|arn:)|[-_]here$/i.test(v));
  const forms = [
    (s: string) => `mysql -h db -uroot -p${s} app\n`,
    (s: string) => `mysql -uroot -p'${s}' app\n`,
    (s: string) => `sshpass -p ${s} ssh deploy@web-1\n`,
    (s: string) => `docker login -u ci-bot -p ${s} registry.example.test\n`,
    (s: string) => `redis-cli -h cache -a ${s} ping\n`,
    (s: string) => `PGPASSWORD=${s} psql -h db\n`,
    (s: string) => `sqlcmd -S db -U sa -P ${s} -Q "SELECT 1"\n`,
  ];
  fc.assert(
    fc.property(password, fc.integer({ min: 0, max: forms.length - 1 }), fc.integer({ min: 1, max: 200 }), (pw, f, cutAt) => {
      const text = forms[f](pw);
      const r = masker.maskText(text);
      assert.equal(r.text.replace(MASK, '\u0000'), text.split(pw).join('\u0000'));
      const cut = 1 + (cutAt % (text.length - 1));
      assert.equal(runSplit(text, [cut]).out, r.text);
    }),
    { numRuns: 400, seed: 11 },
  );
});
