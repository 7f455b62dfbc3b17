import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { createMasker, createStreamMasker, runMaskCommand } from '../../gateway/masking';
import type { SecretHit } from '../../gateway/common/types';
import { ALNUM, B64, p, pem, rand, ruleCases } from '../helpers/masking-fixtures';

const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(11) });

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function runSplit(text: string, cuts: number[], idleMs = 0): { out: string; hits: SecretHit[] } {
  let out = '';
  const hits: SecretHit[] = [];
  const s = createStreamMasker(masker, { onText: (t) => (out += t), onHits: (h) => hits.push(...h), idleMs });
  let last = 0;
  for (const c of cuts) {
    s.write(text.slice(last, c));
    last = c;
  }
  s.write(text.slice(last));
  s.end();
  return { out, hits };
}

test('a secret split at every offset is still masked', () => {
  const known = 'Kn0wn-' + rand(ALNUM, 14);
  masker.addKnownSecret('upstream-credential', known);
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const bearer = rand(ALNUM, 30);
  const pw = rand(ALNUM, 12);
  const body = rand(B64, 64);
  const uriPw = rand(ALNUM, 10);
  const samples: Array<[string, string, string]> = [
    [`export GITHUB_TOKEN=${gh}\nnext line\n`, gh, 'export GITHUB_TOKEN='],
    [`curl -H 'Authorization: Bearer ${bearer}' https://x.test\n`, bearer, "curl -H 'Authorization: Bearer "],
    [`PGPASSWORD=${pw} psql\n`, pw, 'PGPASSWORD='],
    [`key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n${rand(B64, 20)}\n-----END OPENSSH PRIVATE KEY-----\ndone\n`, body, 'key:\n'],
    [`login with ${known} now`, known, 'login with '],
    [`url=postgres://app:${uriPw}@db:5432/x`, uriPw, 'url=postgres://app:'],
  ];
  for (const [text, secret, kept] of samples) {
    const whole = masker.maskText(text);
    for (let i = 1; i < text.length; i++) {
      const { out, hits } = runSplit(text, [i]);
      // at most the first chars of a fixed prefix (`gh` of `ghp_`) may go out before the rest arrives
      for (let k = 2; k + 6 <= secret.length; k++) {
        assert.ok(!out.includes(secret.slice(k, k + 6)), `split at ${i}: ${JSON.stringify(out)}`);
      }
      assert.deepEqual(hits.map((h) => h.kind), whole.hits.map((h) => h.kind), `hits at ${i} of ${JSON.stringify(text)}: ${JSON.stringify(out)}`);
      assert.ok(out.startsWith(kept), `text before the secret is kept: ${JSON.stringify(out)}`);
    }
  }
});

test('a secret written one character at a time is never emitted raw', () => {
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const text = `token ${gh} ok\n`;
  const cuts = Array.from({ length: text.length - 1 }, (_, i) => i + 1);
  const { out } = runSplit(text, cuts);
  assert.ok(!out.includes(gh.slice(4)), out);
  assert.match(out, /\[MASKED:github-pat:[0-9a-f]{10}\]/);
});

test('a secret whose prefix is cut before its 4th character is masked whole', () => {
  const id = p('AK', 'IA') + 'Q3' + rand(ALNUM, 14).toUpperCase();
  const text = `key ${id} done\n`;
  const at = text.indexOf(id);
  for (const cuts of [[at + 1, at + 5], [at + 1], [at + 2], [at + 3], [at + 1, at + 2, at + 3]]) {
    const { out } = runSplit(text, cuts);
    assert.equal(out, masker.maskText(text).text, `cuts ${cuts.join(',')}: ${JSON.stringify(out)}`);
    assert.ok(!out.includes(id.slice(0, 5)), out);
  }
});

/** Secrets of every rule kind and a registered value, each as it appears in text. */
function streamCases(): Array<{ kind: string; text: string; secret: string }> {
  const known = 'Kn0wn-' + rand(ALNUM, 14);
  masker.addKnownSecret('upstream-credential', known);
  const key = pem('OPENSSH PRIVATE KEY');
  const azure = `a.-8${p('Q', '~')}${rand(ALNUM, 34)}`;
  return [
    ...ruleCases().map((c) => ({ kind: c.kind, text: c.text, secret: c.secret })),
    { kind: 'upstream-credential', text: `login with ${known} now\n`, secret: known },
    { kind: 'private-key', text: `key:\n${key}\ndone\n`, secret: key.split('\n')[1] },
    // read before its `Q~`, from chars that are not all letters and digits
    { kind: 'azure-client-secret', text: `secret ${azure} set\n`, secret: azure },
  ];
}

test('property: a stream cut anywhere into writes of any size masks like the whole text', () => {
  const cases = streamCases();
  // each case is one the engine masks in a whole text, so a raw secret in the output is the stream's fault
  for (const c of cases) assert.ok(!masker.maskText(c.text).text.includes(c.secret), c.kind);
  const filler = fc.array(fc.constantFrom('the', 'build', 'ok', 'a', 'is', 'done', '42', 'x', '\n', ' ', '  ', '=', ':', '/', '-'), { maxLength: 12 }).map((w) => w.join(' '));
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: cases.length - 1 }),
      fc.integer({ min: 0, max: cases.length - 1 }),
      filler,
      filler,
      fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 400 }),
      (i, j, before, after, sizes) => {
        const text = `${before}\n${cases[i].text}${after} ${cases[j].text}`;
        const cuts: number[] = [];
        // walk the text in the given write sizes, 1-char writes included; the last size repeats
        for (let at = 0, k = 0; ; k++) {
          at += sizes[Math.min(k, sizes.length - 1)];
          if (at >= text.length) break;
          cuts.push(at);
        }
        const { out } = runSplit(text, cuts);
        const whole = masker.maskText(text).text;
        assert.equal(out, whole, `cuts ${JSON.stringify(cuts)} of ${JSON.stringify(text)}`);
        // placeholders name their kind (`rubygems-token`), which may read like the secret's prefix
        const raw = out.replace(/\[MASKED:[^\]]*\]/g, '\0');
        for (const c of [cases[i], cases[j]]) {
          // no raw prefix of 4+ chars followed by more of the secret
          assert.ok(!raw.includes(c.secret.slice(0, 5)), `${c.kind}: ${JSON.stringify(out)}`);
        }
      },
    ),
    { numRuns: 600, seed: 7 },
  );
});

test('typing is held at most to the end of a word; a word alone goes out after idleMs', async () => {
  let out = '';
  const s = createStreamMasker(masker, { onText: (t) => (out += t), onHits: () => undefined, idleMs: 20 });
  const typed = 'ls -la /tmp && echo done\r\n';
  for (let i = 0; i < typed.length; i++) {
    s.write(typed[i]);
    // a word may be the start of a secret (`A` of `AKIA…`) until a space or newline ends it
    if (/\s/.test(typed[i])) assert.equal(out, typed.slice(0, i + 1), `held back at ${i}`);
  }
  assert.equal(out, typed);
  s.write('cd');
  assert.equal(out, typed);
  await waitFor(() => out === typed + 'cd');
  s.end();
});

test('a held tail is flushed after idleMs; a token cut short is masked, not leaked', async () => {
  let out = '';
  const s = createStreamMasker(masker, { onText: (t) => (out += t), onHits: () => undefined, idleMs: 20 });
  const partial = p('gh', 'p_') + rand(ALNUM, 20);
  s.write(`echo ${partial}`);
  assert.equal(out, 'echo ');
  await new Promise((r) => setTimeout(r, 80));
  assert.match(out, /^echo \[MASKED:github-pat:[0-9a-f]{10}\]$/);
  s.end();
});

test('flightlog mask streams input to output masked and prints counts per kind on stderr', async () => {
  const gh = p('gh', 'p_') + rand(ALNUM, 36);
  const pw = rand(ALNUM, 12);
  const input = new PassThrough();
  const output = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  output.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = runMaskCommand({ input, output, stderr, masker });
  const text = `a ${gh}\nDB_PASSWORD=${pw}\nb ${gh}\n` + 'plain line\n'.repeat(2000);
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += 777) input.write(buf.subarray(i, i + 777));
  input.end();
  assert.equal(await done, 0);
  assert.ok(!out.includes(gh) && !out.includes(pw));
  assert.equal(out, masker.maskText(text).text);
  assert.equal(err, 'flightlog mask: masked 3 secrets: github-pat ×2, password ×1\n');
  assert.ok(!err.includes(gh));
});
