import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runExportCommand, runTrustCommand, runVerifyCommand } from '../../gateway/cli/bundle-commands';
import type { Io } from '../../gateway/cli/main';
import { cleanupStores, flipByte, memberRange, newStore, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';

let store: Store;
let samples: Samples;
let work: string;
let reviewer: string;

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
  reviewer = tmpDir('flightlog-bundle-reviewer-');
});

after(() => {
  store.db.close();
  for (const d of [work, reviewer]) fs.rmSync(d, { recursive: true, force: true });
  cleanupStores();
});

async function cli(fn: (argv: string[], io: Io) => Promise<number>, argv: string[], opts: { tty?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  if (opts.tty) Object.assign(stderr, { isTTY: true, columns: 100 });
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await fn(argv, { stdout, stderr, stdin: new PassThrough(), env: {} });
  return { code, stdout: out, stderr: err };
}

test('export → verify → trust: the reviewer sees an unknown key until they trust it', async () => {
  const file = path.join(work, 'review.flightlog');
  const ex = await cli(runExportCommand, [samples.pg.slice(0, -2), samples.ssh, '-o', file, '--data-dir', store.dir], { tty: true });
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, new RegExp(`^exported 2 sessions, \\d+ events to .*review\\.flightlog \\(.*\\), signed by ${store.key.fingerprint.replace(/[+/]/g, '\\$&')}\\n$`));
  assert.match(ex.stderr, /\rexporting \[#+\] 100%/, 'a progress bar on a terminal');

  let v = await cli(runVerifyCommand, [file, '--data-dir', reviewer]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^verified: 2 sessions, \d+ events, signed by SHA256:\S+ \(unknown key\)\n$/);
  v = await cli(runVerifyCommand, [file, '--data-dir', reviewer, '--require-trusted']);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /is not trusted/);

  const t = await cli(runTrustCommand, ['add', path.join(store.dir, 'gateway-key.pub.pem'), '--name', 'alice laptop', '--data-dir', reviewer]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout, `trusted ${store.key.fingerprint} as "alice laptop"\n`);
  assert.equal(fs.statSync(path.join(reviewer, 'trusted-keys.json')).mode & 0o777, 0o600);
  const list = await cli(runTrustCommand, ['list', '--data-dir', reviewer]);
  assert.match(list.stdout, /^alice laptop {2}SHA256:\S+ {2}\d{4}-/);
  v = await cli(runVerifyCommand, [file, '--data-dir', reviewer, '--require-trusted']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /\(trusted: alice laptop\)\n$/);

  // On the machine that made it, the gateway's own key is trusted as such.
  v = await cli(runVerifyCommand, [file, '--data-dir', store.dir]);
  assert.match(v.stdout, /\(trusted: this gateway\)/);

  const json = await cli(runVerifyCommand, [file, '--json', '--data-dir', reviewer]);
  assert.equal(JSON.parse(json.stdout).ok, true);

  const { offset } = await memberRange(file, `sessions/${samples.ssh}/events.ndjson`);
  flipByte(file, offset + 40);
  v = await cli(runVerifyCommand, [file, '--data-dir', reviewer]);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /^not verified: sessions\/ses_\w+\/events\.ndjson: session ses_\w+, event 1: .*\n$/);

  const rm = await cli(runTrustCommand, ['remove', 'alice laptop', '--data-dir', reviewer]);
  assert.equal(rm.code, 0);
  assert.match((await cli(runTrustCommand, ['list', '--data-dir', reviewer])).stdout, /no trusted keys/);
});

test('export formats by flag or extension, --run, and refusing to overwrite', async () => {
  const cast = path.join(work, 's.cast');
  let r = await cli(runExportCommand, [samples.ssh, '-o', cast, '--data-dir', store.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /asciicast v2/);
  r = await cli(runExportCommand, [samples.ssh, '-o', cast, '--data-dir', store.dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^flightlog: .*s\.cast already exists \(pass --force to replace it\)\n$/);
  r = await cli(runExportCommand, [samples.ssh, '-o', cast, '--force', '--data-dir', store.dir]);
  assert.equal(r.code, 0);
  r = await cli(runExportCommand, ['--run', 'run_test1', '-o', path.join(work, 'run.out'), '--format', 'jsonl', '--data-dir', store.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /JSON Lines/);
  r = await cli(runExportCommand, [samples.http, '-o', path.join(work, 'x.har'), '--data-dir', store.dir]);
  assert.match(r.stdout, /exported 4 HTTP exchanges/);
  r = await cli(runExportCommand, ['--run', 'run_test1', '-o', path.join(work, 'run.flightlog'), '--data-dir', store.dir]);
  assert.match(r.stdout, /^exported 3 sessions/);
  assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
});

test('bad input: one line on stderr and the usual exit codes', async () => {
  const cases: Array<[(a: string[], io: Io) => Promise<number>, string[], number, RegExp]> = [
    [runExportCommand, ['-o', 'x.flightlog', '--data-dir', store.dir], 2, /needs at least one SESSION or --run RUN/],
    [runExportCommand, [samples.pg, '--data-dir', store.dir], 2, /needs -o FILE/],
    [runExportCommand, [samples.pg, '-o', 'x', '--format', 'zip', '--data-dir', store.dir], 2, /--format must be one of bundle, asciicast, har, jsonl/],
    [runExportCommand, [samples.pg, '-o', 'x', '--bogus', '--data-dir', store.dir], 2, /Unknown option '--bogus'/],
    [runExportCommand, ['ses_nope', '-o', path.join(work, 'n.flightlog'), '--data-dir', store.dir], 1, /no session "ses_nope"/],
    [runExportCommand, [samples.pg, '-o', path.join(work, 'n.flightlog'), '--data-dir', path.join(work, 'empty')], 1, /no Flightlog store in/],
    [runExportCommand, [samples.pg, samples.ssh, '-o', path.join(work, 'two.cast'), '--data-dir', store.dir], 2, /exactly one session/],
    [runVerifyCommand, ['--data-dir', reviewer], 1, /no Flightlog store in/],
    [runVerifyCommand, ['a.flightlog', 'b.flightlog', '--data-dir', reviewer], 2, /verify takes one FILE/],
    [runVerifyCommand, ['a.flightlog', '--store', '--data-dir', reviewer], 2, /verify takes one FILE, or --store/],
    [runVerifyCommand, [path.join(work, 'missing.flightlog'), '--data-dir', reviewer], 1, /no such file/],
    [runTrustCommand, ['add', path.join(store.dir, 'gateway-key.pem'), '--data-dir', reviewer], 1, /holds a private key/],
    [runTrustCommand, ['add', path.join(work, 'nokey.pem'), '--data-dir', reviewer], 1, /cannot read .*ENOENT/],
    [runTrustCommand, ['frobnicate'], 2, /unknown trust command "frobnicate"/],
  ];
  for (const [fn, argv, code, re] of cases) {
    const r = await cli(fn, argv);
    assert.equal(r.code, code, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  }
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' });
  fs.writeFileSync(path.join(work, 'rsa.pem'), rsa);
  const r = await cli(runTrustCommand, ['add', path.join(work, 'rsa.pem'), '--data-dir', reviewer]);
  assert.match(r.stderr, /is a rsa key; Flightlog gateways sign with Ed25519/);
  const h = await cli(runExportCommand, ['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^usage: flightlog export/);
});
