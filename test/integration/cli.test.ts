import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { tempDir } from '../helpers/tmp';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

function tmp(): string {
  return tempDir('flightlog-cli-');
}

function fl(args: string[], opts: { env?: Record<string, string>; input?: string } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, FLIGHTLOG_HOME: '', ...opts.env }, input: opts.input, timeout: 30000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** No user ever sees a stack trace: one line, prefixed, non-zero. */
function assertOneLineError(r: { code: number | null; stderr: string }, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit ${code}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test('identity add prints the token alone; list, revoke; --data-dir and $FLIGHTLOG_HOME both work', () => {
  const dir = tmp();
  const add = fl(['identity', 'add', 'claude', '--kind', 'agent', '--data-dir', dir]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /^flt_[A-Za-z0-9]{40}\n$/);
  const list = fl(['identity', 'list', '--json'], { env: { FLIGHTLOG_HOME: dir } });
  assert.equal(list.code, 0);
  const ids = JSON.parse(list.stdout) as Array<{ name: string; kind: string; revokedAt: string | null }>;
  assert.deepEqual(ids.map((i) => [i.name, i.kind, i.revokedAt]), [['claude', 'agent', null]]);
  assert.equal(fl(['identity', 'revoke', 'claude', '--data-dir', dir]).code, 0);
  const after = JSON.parse(fl(['identity', 'list', '--json', '--data-dir', dir]).stdout) as Array<{ revokedAt: string | null }>;
  assert.ok(after[0].revokedAt);
  assertOneLineError(fl(['identity', 'revoke', 'claude', '--data-dir', dir]), 1, /already revoked/);
  assertOneLineError(fl(['identity', 'add', 'x', '--kind', 'robot', '--data-dir', dir]), 2, /--kind must be agent or human/);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
});

test('read commands on an empty store print [] with --json', () => {
  const dir = tmp();
  for (const cmd of [['sessions'], ['search', 'anything'], ['findings'], ['runs']]) {
    const r = fl([...cmd, '--json', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
  }
});

test('bad input: one line, non-zero, no stack trace', async () => {
  const dir = tmp();
  assertOneLineError(fl(['launch']), 2, /unknown command "launch"/);
  assertOneLineError(fl(['sessions', '--colour']), 2, /Unknown option '--colour'/);
  assertOneLineError(fl(['show', 'ses_nope', '--data-dir', dir]), 1, /no session "ses_nope"/);
  assertOneLineError(fl(['show', '--data-dir', dir]), 2, /show needs a session id/);
  assertOneLineError(fl(['gateway', '--config', path.join(dir, 'missing.yaml'), '--data-dir', dir]), 1, /config file not found/);
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'connections:\n  - name: db\n    protocol: postgres\n    listen: 127.0.0.1:0\n    upstream: { host: h, user: u, password: plain }\n    identities: [a]\n');
  assertOneLineError(fl(['gateway', '--config', bad, '--data-dir', dir]), 1, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5: connections\\[0\\]\\.upstream\\.password: secrets are referenced`));
  const envMissing = path.join(dir, 'env.yaml');
  fs.writeFileSync(envMissing, 'connections:\n  - name: db\n    protocol: postgres\n    listen: 127.0.0.1:0\n    upstream: { host: h, user: u, password: { env: FLIGHTLOG_TEST_UNSET_VAR } }\n    identities: [a]\n');
  assertOneLineError(fl(['gateway', '--config', envMissing, '--data-dir', dir]), 1, /FLIGHTLOG_TEST_UNSET_VAR, which is not set/);
  assertOneLineError(fl(['identity', 'add-key', 'a', path.join(dir, 'nokey.pub'), '--data-dir', dir]), 1, /cannot read .*nokey\.pub: ENOENT/);

  // A port in use.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  const inUse = path.join(dir, 'inuse.yaml');
  fs.writeFileSync(inUse, `connections:\n  - name: db\n    protocol: postgres\n    listen: 127.0.0.1:${port}\n    upstream: { host: 127.0.0.1, user: u, password: { env: HOME } }\n    identities: [a]\n`);
  const r = fl(['gateway', '--config', inUse, '--data-dir', dir]);
  blocker.close();
  // Only meaningful where a postgres listener exists in this build.
  if (!/no postgres listener/.test(r.stderr)) assertOneLineError(r, 1, new RegExp(`connection "db": 127\\.0\\.0\\.1:${port} is already in use`));
});

test('the gateway prints where it listens, serves the control API, and exits 0 on SIGTERM', async () => {
  const dir = tmp();
  const child = spawn(process.execPath, [BIN, 'gateway', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Never leave a gateway behind, whatever fails below.
  const reap = () => child.exitCode === null && child.kill('SIGKILL');
  process.once('exit', reap);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready line: ${out} ${err}`)), 20000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const url = /control\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  assert.ok(url, out);
  const token = fs.readFileSync(path.join(dir, 'control-token'), 'utf8').trim();
  assert.equal(fs.statSync(path.join(dir, 'control-token')).mode & 0o777, 0o600);
  assert.equal((await fetch(`${url}/api/sessions`)).status, 401);
  const res = await fetch(`${url}/api/sessions`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { sessions: [], total: 0 });
  // A second gateway on the same data dir is refused.
  assertOneLineError(fl(['gateway', '--data-dir', dir]), 1, /another gateway \(pid \d+\) is running/);
  const code = await new Promise<number | null>((resolve) => {
    child.on('exit', (c) => resolve(c));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0, err);
  assert.equal(fs.existsSync(path.join(dir, 'gateway.pid')), false);
});

test('secret add keeps digests only; mask scrubs registered and well-known secrets from a file or stdin', () => {
  const dir = tmp();
  const value = 'Registered-Deploy-Secret-7f3a9c';
  const add = fl(['secret', 'add', 'deploy-key', '--data-dir', dir], { input: value + '\n' });
  assert.equal(add.code, 0, add.stderr);
  assert.doesNotMatch(add.stdout + add.stderr, new RegExp(value));
  for (const f of fs.readdirSync(dir)) assert.equal(fs.readFileSync(path.join(dir, f)).includes(Buffer.from(value)), false, `${f} holds no raw value`);
  const list = JSON.parse(fl(['secret', 'list', '--json', '--data-dir', dir]).stdout) as Array<{ name: string }>;
  assert.deepEqual(list.map((s) => s.name), ['deploy-key']);
  assertOneLineError(fl(['secret', 'add', 'empty', '--data-dir', dir], { input: '' }), 1, /no value on stdin/);

  const log = path.join(dir, 'app.log');
  const ghp = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
  fs.writeFileSync(log, `deploying with ${value}\nGITHUB_TOKEN=${ghp}\nplain line\n`);
  const masked = fl(['mask', log, '--data-dir', dir]);
  assert.equal(masked.code, 0, masked.stderr);
  assert.doesNotMatch(masked.stdout, new RegExp(value));
  assert.doesNotMatch(masked.stdout, new RegExp(ghp));
  assert.match(masked.stdout, /\[MASKED:registered:deploy-key:[0-9a-f]{10}\]/);
  assert.match(masked.stdout, /plain line\n$/);
  assert.match(masked.stderr, /masked 2 secrets/);
  const piped = fl(['mask', '--data-dir', dir], { input: `echo ${value}` });
  assert.match(piped.stdout, /^echo \[MASKED:registered:deploy-key:/);
  assertOneLineError(fl(['mask', path.join(dir, 'missing.log'), '--data-dir', dir]), 1, /cannot read .*missing\.log: ENOENT/);
});
