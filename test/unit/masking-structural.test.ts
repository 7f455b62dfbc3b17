import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../gateway/masking';
import type { Json } from '../../gateway/common/types';
import { ALNUM, p, rand } from '../helpers/masking-fixtures';

const m = createMasker({ fingerprintKey: new Uint8Array(32).fill(5) });

test('values under secret keys are masked whole; other strings get the text rules', () => {
  const pw = rand(ALNUM, 6);
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const body: Json = {
    user: 'app',
    password: pw,
    nested: { client_secret: 'abc', note: `token is ${gh}`, max_tokens: 100, retries: 3, enabled: true },
    list: [{ api_key: 'k' + rand(ALNUM, 20) }],
    config: 'password: hunter2-' + pw,
    secret: gh,
    empty_token: '',
  };
  const r = m.maskValue(body);
  const v = r.value as { [k: string]: Json };
  const text = JSON.stringify(v);
  assert.ok(!text.includes(pw) && !text.includes(gh), text);
  assert.equal(v.user, 'app');
  assert.equal(v.password, `[MASKED:password:${m.fingerprint(pw)}]`);
  assert.equal((v.nested as { [k: string]: Json }).max_tokens, 100);
  assert.equal((v.nested as { [k: string]: Json }).enabled, true);
  assert.match(String((v.nested as { [k: string]: Json }).client_secret), /^\[MASKED:client-secret:/);
  assert.equal(v.secret, `[MASKED:github-pat:${m.fingerprint(gh)}]`, 'a token under a secret key keeps its specific kind');
  assert.equal(v.empty_token, '');
  assert.ok(r.hits.length >= 6);
});

test('a column hint masks the whole value; the Authorization scheme stays readable', () => {
  assert.match(String(m.maskValue('x', 'password').value), /^\[MASKED:password:[0-9a-f]{10}\]$/);
  assert.match(String(m.maskValue('tok-' + rand(ALNUM, 10), 'access_token').value), /^\[MASKED:secret-field:/);
  assert.equal(m.maskValue('plain', 'name').value, 'plain');
  assert.match(String(m.maskValue('Bearer ' + rand(ALNUM, 30), 'authorization').value), /^Bearer \[MASKED:bearer-token:/);
  assert.deepEqual(m.maskValue(null, 'password').value, null);
});

test('Kubernetes Secret objects: data decoded, scanned and masked whole; stringData masked whole', () => {
  const pw = 'pw-' + rand(ALNUM, 12);
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const secret: Json = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', annotations: { note: 'rotated' } },
    data: { password: Buffer.from(pw).toString('base64'), gh: Buffer.from(gh).toString('base64'), user: Buffer.from('app').toString('base64') },
    stringData: { extra: 'plain-' + pw },
    type: 'Opaque',
  };
  const r = m.maskValue({ kind: 'List', items: [secret] });
  const text = JSON.stringify(r.value);
  assert.ok(!text.includes(pw) && !text.includes(Buffer.from(pw).toString('base64')), text);
  const item = ((r.value as { items: Json[] }).items[0]) as { data: { [k: string]: string }; metadata: Json };
  assert.equal(item.data.password, `[MASKED:k8s-secret:${m.fingerprint(pw)}]`);
  assert.equal(item.data.gh, `[MASKED:github-pat:${m.fingerprint(gh)}]`);
  assert.match(item.data.user, /^\[MASKED:k8s-secret:/);
  assert.deepEqual(item.metadata, { name: 'db', annotations: { note: 'rotated' } });
  // a Secret applied with kubectl leaves its JSON in an annotation string: the text rules catch it
  const ann = m.maskValue({ 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(secret) });
  assert.ok(!JSON.stringify(ann.value).includes(Buffer.from(pw).toString('base64')));
});
