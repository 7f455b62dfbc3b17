import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker, digestSecret } from '../../gateway/masking';
import { ALNUM, rand } from '../helpers/masking-fixtures';

const key = new Uint8Array(32).fill(3);

test('known in-memory secrets are masked raw, base64, base64url and URL-encoded', () => {
  const m = createMasker({ fingerprintKey: key });
  const secret = 'up/str+eam ' + rand(ALNUM, 12) + '?&';
  m.addKnownSecret('upstream-credential', secret);
  const fp = m.fingerprint(secret);
  const ph = `[MASKED:upstream-credential:${fp}]`;
  assert.equal(m.placeholder('upstream-credential', secret), ph);
  const b = Buffer.from(secret);
  for (const form of [secret, b.toString('base64'), b.toString('base64url'), encodeURIComponent(secret)]) {
    const r = m.maskText(`x ${form} y`);
    assert.ok(!r.text.includes(form), form);
    assert.ok(r.text.includes(ph), r.text);
  }
  // inside a longer base64 value (Basic auth user:secret): the stable middle is masked
  const basic = Buffer.from('deploy:' + secret).toString('base64');
  const r = m.maskText(`Authorization: Basic ${basic}`);
  assert.ok(!r.text.includes(basic));
  const embedded = Buffer.from('{"k":"' + secret + '"}').toString('base64');
  const e = m.maskText(`blob ${embedded} end`).text;
  assert.ok(e.includes(ph), e);
  assert.equal(m.maskText('nothing to see').text, 'nothing to see');
});

test('digestSecret keeps no raw value and the masker finds every form by prefix and HMAC', () => {
  const secret = 'Reg1stered-' + rand(ALNUM, 16);
  const digests = digestSecret('prod-db', secret, key);
  const forms = digests.map((d) => d.form);
  for (const f of ['raw', 'base64', 'base64url', 'url'] as const) {
    if (f === 'url' && encodeURIComponent(secret) === secret) continue;
    if (f === 'base64url' && Buffer.from(secret).toString('base64url') === Buffer.from(secret).toString('base64')) continue;
    assert.ok(forms.includes(f), `missing ${f}`);
  }
  const serialized = JSON.stringify(digests);
  assert.ok(!serialized.includes(secret));
  assert.ok(!serialized.includes(Buffer.from(secret).toString('base64')));
  for (const d of digests) {
    assert.equal(d.prefix.length, 4);
    assert.match(d.hmac, /^[0-9a-f]{64}$/);
    assert.equal(d.name, 'prod-db');
  }
  const m = createMasker({ fingerprintKey: key, known: digests });
  const fp = m.fingerprint(secret);
  assert.equal(digests[0].fp, fp);
  for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')]) {
    const r = m.maskText(`value=${form};`);
    assert.ok(r.text.includes(`[MASKED:registered:prod-db:${fp}]`), r.text);
    assert.deepEqual(r.hits, [{ kind: 'registered:prod-db', fp }]);
  }
  // same prefix, different value: not masked by the digest
  const other = secret.slice(0, 6) + 'zzzzzzzzzzzzzzzzzzzzz';
  assert.ok(!m.maskText(other).hits.some((h) => h.kind === 'registered:prod-db'));
  // digests added later are used too
  const later = createMasker({ fingerprintKey: key });
  later.addDigests(digests);
  assert.ok(later.maskText(`a ${secret} b`).text.includes('registered:prod-db'));
});

test('short known values are ignored rather than masking ordinary words', () => {
  const m = createMasker({ fingerprintKey: key });
  m.addKnownSecret('x', 'abc');
  assert.equal(m.maskText('abc abc').text, 'abc abc');
  assert.deepEqual(digestSecret('n', 'abc', key), []);
});

test('a short text found clean is masked once its value becomes known (clean-text cache is reset)', () => {
  const m = createMasker({ fingerprintKey: key });
  const secret = 'Qx' + rand(ALNUM, 14);
  assert.equal(m.maskText(secret).hits.length, 0);
  assert.equal(m.maskValue({ note: secret }).hits.length, 0);
  m.addKnownSecret('upstream-credential', secret);
  assert.equal(m.maskText(secret).text, `[MASKED:upstream-credential:${m.fingerprint(secret)}]`);
  assert.equal(m.maskValue({ note: secret }).hits.length, 1);
  const other = 'Rg' + rand(ALNUM, 14);
  assert.equal(m.maskText(other).hits.length, 0);
  m.addDigests(digestSecret('later', other, key));
  assert.equal(m.maskText(other).hits[0]?.kind, 'registered:later');
});

test('registered secrets with a non-ASCII or short prefix are still found (plain regex scan)', () => {
  const m = createMasker({ fingerprintKey: key });
  const secret = 'pÄss-wörd-' + rand(ALNUM, 8);
  m.addKnownSecret('upstream-credential', secret);
  const r = m.maskText(`a ${secret} b\nGHP_x PASSWORD=${rand(ALNUM, 16)}`);
  assert.ok(!r.text.includes(secret), r.text);
  assert.equal(r.hits.length, 2, r.text);
  m.addDigests([{ ...digestSecret('tiny', 'zz-' + rand(ALNUM, 10), key)[0], prefix: 'z' }]);
  assert.equal(m.maskText('plain words only').hits.length, 0);
});
