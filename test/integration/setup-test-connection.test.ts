/**
 * The Setup routes of the control API against the real gateway, a real PostgreSQL and a real
 * sshd: `POST /api/settings/connections/test` (a login upstream: success, wrong password, wrong
 * key, a secret the environment lacks), every field error of a save at once, a saved connection
 * tested on save, and `POST /api/settings/secrets` and `flightlog secret add NAME --store` (a 0600
 * file, never echoed, masked by value).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConnectionTestResult, SettingsFieldsError, SettingsSnapshot, StoreSecretResult } from '../../gateway/common/api-types';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { startSshd, type Sshd } from '../helpers/sshd';
import { Readable } from 'node:stream';
import { runCli } from '../../gateway/cli/main';
import { captureCli, execClient } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

let gw: TestGateway;
let pg: PostgresServer;
let sshd: Sshd;
let files: string;
let token = '';

const post = async <T>(route: string, body: unknown): Promise<{ status: number; body: T; text: string }> => {
  const res = await fetch(gw.gateway.control.url + route, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.gateway.control.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, text };
};

const pgConn = (password: unknown, extra: Record<string, unknown> = {}) => ({
  name: 'app-db',
  protocol: 'postgres',
  listen: '127.0.0.1:0',
  upstream: { host: pg.host, port: pg.port, user: pg.app.user, database: pg.app.database, password },
  identities: ['claude'],
  ...extra,
});

describe('Setup routes (real PostgreSQL and sshd)', { timeout: 180_000 }, () => {
  before(async () => {
    files = tempDir('flightlog-setup-');
    fs.writeFileSync(path.join(files, 'banner'), 'Authorized use only. Activity is logged.\n');
    [pg, sshd] = await Promise.all([startPostgres(), startSshd({ extraConfig: `Banner ${path.join(files, 'banner')}` })]);
    fs.writeFileSync(path.join(files, 'pg-good'), pg.app.password);
    fs.writeFileSync(path.join(files, 'pg-bad'), 'wrong-password');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'stranger', '-f', path.join(files, 'stranger')]);
    gw = await startTestGateway();
    token = gw.addIdentity('claude');
  });
  after(async () => {
    await gw?.close();
    await Promise.all([pg?.stop(), sshd?.stop()]);
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  it('tests a Postgres login: the server version, or the server’s exact error', async () => {
    const ok = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: pgConn({ file: path.join(files, 'pg-good') }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.ok, true);
    assert.match(ok.body.serverVersion ?? '', /^PostgreSQL 15\./);
    assert.match(ok.body.message, /^logged in to PostgreSQL 15\.\S+.* at 127\.0\.0\.1:\d+ as app, database app, without TLS$/);

    const bad = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: pgConn({ file: path.join(files, 'pg-bad') }) });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.ok, false);
    assert.match(bad.body.message, /^127\.0\.0\.1:\d+: FATAL 28P01 password authentication failed for user "app"$/);

    const nodb = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: pgConn({ file: path.join(files, 'pg-good') }, { upstream: { host: pg.host, port: pg.port, user: pg.app.user, database: 'nope', password: { file: path.join(files, 'pg-good') } } }) });
    assert.equal(nodb.body.ok, false);
    assert.match(nodb.body.message, /FATAL 3D000 database "nope" does not exist/);
    assert.ok(!JSON.stringify([ok, bad, nodb]).includes(pg.app.password));
  });

  it('tests an SSH login: the server software and host key, or the refused login', async () => {
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${sshd.hostKeyPath}.pub`], { encoding: 'utf8' }).split(/\s+/)[1];
    const ssh = (key: string) => ({ name: 'web-1', protocol: 'ssh', listen: '127.0.0.1:0', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: key } }, identities: ['claude'] });
    const ok = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: ssh(sshd.userKeyPath) });
    assert.equal(ok.body.ok, true, ok.text);
    assert.match(ok.body.serverVersion ?? '', /^OpenSSH_/);
    assert.match(ok.body.message, /^logged in to \S+@127\.0\.0\.1:\d+: server OpenSSH_\S+, banner "Authorized use only\. Activity is logged\.", host key SHA256:\S+ \(not pinned yet\)$/);
    assert.deepEqual(ok.body.hostKey, { fingerprint: fp, type: 'ssh-ed25519', state: 'new' });
    assert.equal(fs.existsSync(path.join(gw.dataDir, 'ssh', 'known_hosts.json')), false, 'a test pins nothing');

    const bad = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: ssh(path.join(files, 'stranger')) });
    assert.equal(bad.body.ok, false);
    assert.match(bad.body.message, /login refused for user '\S+' \(All configured authentication methods failed\)/);
    assert.equal(bad.body.hostKey?.fingerprint, fp);

    const pinned = { ...ssh(sshd.userKeyPath), upstream: { ...ssh(sshd.userKeyPath).upstream, hostKey: fs.readFileSync(path.join(files, 'stranger.pub'), 'utf8') } };
    const changed = await post<ConnectionTestResult>('/api/settings/connections/test', { connection: pinned });
    assert.equal(changed.body.ok, false);
    assert.match(changed.body.message, /the host key changed: pinned SHA256:\S+, the server presented SHA256:/);
  });

  it('answers a secret the environment lacks with its field and what to do', async () => {
    const res = await post<SettingsFieldsError>('/api/settings/connections/test', { connection: pgConn({ env: 'FLIGHTLOG_TEST_UNSET_PW' }) });
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.error.fields.map((f) => [f.field, f.code, f.variable]), [['upstream.password', 'E_SECRET_MISSING', 'FLIGHTLOG_TEST_UNSET_PW']]);
    assert.match(res.body.error.fields[0].message, /Store the value in Flightlog here, or export FLIGHTLOG_TEST_UNSET_PW and start the gateway again/);

    const save = await post<SettingsFieldsError>('/api/settings/connections', { connection: pgConn({ env: 'FLIGHTLOG_TEST_UNSET_PW' }) });
    assert.equal(save.status, 400);
    assert.match(save.body.error.message, /FLIGHTLOG_TEST_UNSET_PW, which is not set: export it and start the gateway again, or store the value in Flightlog/);
    assert.equal(save.body.error.fields[0].code, 'E_SECRET_MISSING');
  });

  it('reports every refused field of a save at once, with the validator’s line kept', async () => {
    const res = await post<SettingsFieldsError>('/api/settings/connections', {
      connection: { name: 'bad name', protocol: 'postgres', listen: 'x', upstream: { port: 'fifty', password: 'inline-secret' }, identities: [] },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'E_CONFIG');
    assert.equal(res.body.error.path, 'connections[0].name', 'the first refusal, as before');
    assert.deepEqual(
      res.body.error.fields.map((f) => f.field),
      ['name', 'listen', 'upstream.host', 'upstream.port', 'upstream.user', 'upstream.password', 'identities'],
    );
    assert.match(res.body.error.fields.find((f) => f.field === 'upstream.password')?.message ?? '', /secrets are referenced, never written here/);
    assert.ok(!res.text.includes('inline-secret'));

    // a port another program holds is the listen field's problem too
    const taken = await post<SettingsFieldsError>('/api/settings/connections', { connection: pgConn({ file: path.join(files, 'pg-good') }, { name: 'taken', listen: `127.0.0.1:${pg.port}` }) });
    assert.equal(taken.status, 409);
    assert.deepEqual(taken.body.error.fields, [{ field: 'listen', message: `127.0.0.1:${pg.port} is already in use` }]);
  });

  it('tests a connection on save and reports it in the snapshot', async () => {
    const res = await post<SettingsSnapshot>('/api/settings/connections', { connection: pgConn({ file: path.join(files, 'pg-bad') }) });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.listeners.find((l) => l.connection === 'app-db')?.address, 'listening');
    assert.equal(res.body.tests?.['app-db']?.ok, false);
    assert.match(res.body.tests?.['app-db']?.message ?? '', /password authentication failed/);
    const byName = await post<ConnectionTestResult>('/api/settings/connections/test', { name: 'app-db' });
    assert.equal(byName.body.ok, false);
  });

  it('restarts a listener whose stored secret was replaced, on the next save', async () => {
    const psql = () => execClient('psql', ['-X', '-A', '-t', '-c', 'select 1', `host=127.0.0.1 port=${gw.address('rotating').port} user=claude password=${token} dbname=app sslmode=disable`]);
    const first = await post<StoreSecretResult>('/api/settings/secrets', { name: 'ROTATING_PW', value: 'an-old-password' });
    const conn = pgConn({ file: first.body.ref.file }, { name: 'rotating' });
    assert.equal((await post<SettingsSnapshot>('/api/settings/connections', { connection: conn })).status, 200);
    const refused = await psql();
    assert.notEqual(refused.code, 0, 'the old value is refused upstream');
    assert.match(refused.stderr, /password authentication failed/);

    await post<StoreSecretResult>('/api/settings/secrets', { name: 'ROTATING_PW', value: pg.app.password });
    const saved = await post<SettingsSnapshot>('/api/settings/connections', { connection: conn, replaces: 'rotating' });
    assert.equal(saved.body.tests?.rotating?.ok, true, saved.text);
    const ok = await psql();
    assert.equal(ok.code, 0, `the listener now logs in with the new value: ${ok.stderr}`);
    assert.equal(ok.stdout.trim(), '1');
  });

  it('stores a secret in a 0600 file (route and CLI), never echoing it, and masks it by value', async () => {
    const value = 'stored-Secret-9f2c1e77';
    const res = await post<StoreSecretResult>('/api/settings/secrets', { name: 'APP_DB_PASSWORD', value });
    assert.equal(res.status, 201);
    const file = path.join(gw.dataDir, 'secrets', 'APP_DB_PASSWORD');
    assert.deepEqual(res.body, { name: 'APP_DB_PASSWORD', ref: { file }, registered: true });
    assert.ok(!res.text.includes(value));
    assert.equal(fs.readFileSync(file, 'utf8'), value);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(gw.gateway.masker.maskText(`password is ${value}`).text.includes(value), false, 'masked by value from now on');

    const badName = await post<{ error: { code: string } }>('/api/settings/secrets', { name: '../etc/passwd', value });
    assert.equal(badName.status, 400);
    assert.equal(badName.body.error.code, 'E_SECRET_NAME');

    const cliValue = 'cli-Stored-77aa01bb';
    const cli = await captureCli(['secret', 'add', 'VENDOR_KEY', '--store', '--data-dir', gw.dataDir], {
      fn: (argv, io) => runCli(argv, { ...io, stdin: Readable.from([cliValue]) }),
    });
    assert.equal(cli.code, 0, cli.stderr);
    const cliFile = path.join(gw.dataDir, 'secrets', 'VENDOR_KEY');
    assert.equal(cli.stdout.trim(), `{ file: ${cliFile} }`);
    assert.equal(fs.readFileSync(cliFile, 'utf8'), cliValue);
    assert.equal(fs.statSync(cliFile).mode & 0o777, 0o600);
    assert.ok(!(cli.stdout + cli.stderr).includes(cliValue));
    await gw.flush();
    assert.deepEqual(gw.grepDataDir(value), [file]);
  });
});
