/**
 * The Postgres connection keys added for client compatibility (`upstream.databases`, the TLS
 * default) are validated like the rest of flightlog.yaml: file:line, path, what was expected.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../gateway/config/load';
import type { PostgresUpstream } from '../../gateway/common/config-schema';
import { ConfigError } from '../../gateway/core/errors';
import { chooseDatabase } from '../../gateway/postgres/listener';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-compat-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function load(upstreamLines: string[]): ReturnType<typeof loadConfig> {
  const file = path.join(dir, 'flightlog.yaml');
  fs.writeFileSync(file, [
    'connections:',
    '  - name: app-db',
    '    protocol: postgres',
    '    listen: 127.0.0.1:6432',
    '    upstream:',
    '      host: 127.0.0.1',
    '      user: app',
    ...upstreamLines.map((l) => `      ${l}`),
    '    identities: [claude]',
    '',
  ].join('\n'));
  return loadConfig(file);
}

function configError(upstreamLines: string[]): string {
  try {
    load(upstreamLines);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    return err.message.replace(dir + path.sep, '');
  }
  assert.fail('the config was accepted');
}

test('upstream.databases: a list of names; the default database must be one of them', () => {
  const c = load(['database: app', 'databases: [app, app_test]']);
  assert.deepEqual((c.connections[0].upstream as PostgresUpstream).databases, ['app', 'app_test']);
  assert.equal(configError(['databases: app']), 'flightlog.yaml:8: connections[0].upstream.databases: expected a list of database names a client may ask for, got "app"');
  assert.equal(configError(['databases: []']), 'flightlog.yaml:8: connections[0].upstream.databases: expected a list of database names a client may ask for, got a list');
  assert.equal(configError(['databases: [app, ""]']), 'flightlog.yaml:8: connections[0].upstream.databases[1]: expected a database name, got ""');
  assert.equal(configError(['database: prod', 'databases: [app, app_test]']), 'flightlog.yaml:8: connections[0].upstream.database: expected one of databases (app, app_test), got "prod"');
  assert.match(configError(['tls: maybe']), /upstream\.tls: expected one of disable, prefer, require, verify-full, got "maybe"/);
});

test('the sample config loads, databases and all', () => {
  const sample = path.resolve(__dirname, '../../../resources/sample-config/flightlog.yaml');
  const c = loadConfig(sample);
  const up = c.connections.find((x) => x.protocol === 'postgres')?.upstream as PostgresUpstream;
  assert.deepEqual(up.databases, ['app', 'app_test']);
});

test('the database a client asks for: honoured when listed, the default when it names none, refused otherwise', () => {
  const up: PostgresUpstream = { host: 'h', port: 5432, user: 'app', database: 'app', databases: ['app', 'app_test'] };
  assert.deepEqual(chooseDatabase(up, 'app_test', 'claude'), { database: 'app_test' });
  assert.deepEqual(chooseDatabase(up, undefined, 'claude'), { database: 'app' });
  assert.deepEqual(chooseDatabase(up, 'claude', 'claude'), { database: 'app' });
  assert.deepEqual(chooseDatabase(up, 'postgres', 'claude'), { refused: 'postgres', allowed: ['app', 'app_test'] });
  const single: PostgresUpstream = { host: 'h', port: 5432, user: 'app', database: 'app' };
  assert.deepEqual(chooseDatabase(single, 'app_test', 'claude'), { refused: 'app_test', allowed: ['app'] });
  const open: PostgresUpstream = { host: 'h', port: 5432, user: 'app' };
  assert.deepEqual(chooseDatabase(open, 'anything', 'claude'), { database: 'anything' });
  assert.deepEqual(chooseDatabase(open, undefined, 'claude'), { database: 'app' });
  const listOnly: PostgresUpstream = { host: 'h', port: 5432, user: 'app', databases: ['one', 'two'] };
  assert.deepEqual(chooseDatabase(listOnly, undefined, 'claude'), { database: 'one' });
});
