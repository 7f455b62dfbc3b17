import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, resolveSecrets } from '../../gateway/config/load';
import { ConfigError } from '../../gateway/core/errors';
import { tempDir } from '../helpers/tmp';

const dir = tempDir('flightlog-config-');

function write(text: string): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

const GOOD = `
connections:
  - name: app-db
    protocol: postgres
    listen: 127.0.0.1:6432
    upstream: { host: 127.0.0.1, port: 5432, user: app, database: app,
                password: { env: APP_DB_PASSWORD } }
    identities: [claude]
  - name: web-1
    protocol: ssh
    listen: 127.0.0.1:2222
    upstream: { host: web-1.internal, port: 22, user: deploy,
                privateKey: { file: ./deploy_key } }
    identities: [claude]
  - name: model
    protocol: http
    listen: 127.0.0.1:8788
    upstream: { url: https://api.anthropic.com,
                headers: { x-api-key: { env: ANTHROPIC_API_KEY } } }
    llm: anthropic
    identities: [claude]
`;

test('the DESIGN.md example loads with defaults filled in', () => {
  const c = loadConfig(write(GOOD));
  assert.equal(c.connections.length, 3);
  assert.deepEqual(c.connections[0].listen, { host: '127.0.0.1', port: 6432 });
  assert.equal(c.connections[0].mask, 'record');
  assert.equal(c.connections[2].llm, 'anthropic');
  assert.equal(c.recording.headRows, 100);
  assert.equal(c.controlApi.host, '127.0.0.1');
});

/** Each bad config names the file, the line, the path inside the document and what was expected. */
const BAD: Array<[string, string, RegExp]> = [
  ['inline secret', GOOD.replace('password: { env: APP_DB_PASSWORD }', 'password: hunter2'), /:7: connections\[0\]\.upstream\.password: secrets are referenced, never written here/],
  ['unknown protocol', GOOD.replace('protocol: ssh', 'protocol: telnet'), /:10: connections\[1\]\.protocol: expected one of postgres, ssh, http, kubernetes, mcp, got "telnet"/],
  ['bad listen', GOOD.replace('listen: 127.0.0.1:2222', 'listen: nowhere'), /connections\[1\]\.listen: expected host:port, got "nowhere"/],
  ['port out of range', GOOD.replace('port: 5432', 'port: 99999'), /connections\[0\]\.upstream\.port: expected a port number 0-65535, got 99999/],
  ['missing user', GOOD.replace('user: app, ', ''), /connections\[0\]\.upstream\.user: expected a user name, but it is missing/],
  ['duplicate name', GOOD.replace('name: web-1', 'name: app-db'), /connections\[1\]\.name: duplicate connection name "app-db"/],
  ['listen clash', GOOD.replace('listen: 127.0.0.1:2222', 'listen: 127.0.0.1:6432'), /connections\[1\]\.listen: 127\.0\.0\.1:6432 is already used by connection "app-db"/],
  ['unknown key', GOOD.replace('llm: anthropic', 'llm: anthropic\n    colour: blue'), /connections\[2\]\.colour: unknown key "colour"/],
  ['no identities', GOOD.replace('identities: [claude]', 'identities: []'), /connections\[0\]\.identities: expected a list of identity names/],
  ['ssh without credentials', GOOD.replace('privateKey: { file: ./deploy_key }', 'hostKey: "ssh-ed25519 AAAA"'), /connections\[1\]\.upstream: expected password or privateKey/],
  ['llm on postgres', GOOD.replace('identities: [claude]\n  - name: web-1', 'identities: [claude]\n    llm: openai\n  - name: web-1'), /connections\[0\]\.llm: llm is only valid on protocol: http/],
  ['url with credentials', GOOD.replace('https://api.anthropic.com', 'https://u:p@api.anthropic.com'), /connections\[2\]\.upstream\.url: credentials do not belong in the URL/],
  ['auth header inline', GOOD.replace('x-api-key: { env: ANTHROPIC_API_KEY }', 'x-api-key: sk-ant-123'), /connections\[2\]\.upstream\.headers\.x-api-key: secrets are referenced/],
  ['not yaml', 'connections: [\n  - name: x\n', /not valid YAML/],
  ['connections not a list', 'connections: { name: x }', /connections: expected a list of connections, got a mapping/],
  ['top-level typo', 'conections: []', /\(document\)|conections: unknown key "conections"/],
  ['control API off loopback', 'controlApi: { listen: 0.0.0.0:9000 }', /controlApi\.listen: the control API listens on loopback only/],
  ['bad env name', GOOD.replace('{ env: APP_DB_PASSWORD }', '{ env: "APP DB" }'), /upstream\.password\.env: expected an environment variable name/],
];

for (const [name, text, re] of BAD) {
  test(`bad config: ${name}`, () => {
    const file = write(text);
    assert.throws(
      () => loadConfig(file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
        assert.ok(err.message.startsWith(file), `names the file: ${err.message}`);
        assert.match(err.message, re);
        assert.equal(err.message.includes('\n'), false, 'one line');
        return true;
      },
    );
  });
}

test('a missing config file is one clear line', () => {
  assert.throws(() => loadConfig(path.join(dir, 'nope.yaml')), /config file not found: .*nope\.yaml/);
});

test('secrets resolve from the environment and from files, with precise errors', () => {
  const keyFile = path.join(dir, 'deploy_key');
  fs.writeFileSync(keyFile, 'KEYDATA\n');
  const c = loadConfig(write(GOOD));
  assert.deepEqual(resolveSecrets(c.connections[0], { APP_DB_PASSWORD: 'pw' }, c.file), { password: 'pw' });
  assert.deepEqual(resolveSecrets(c.connections[1], {}, c.file), { privateKey: 'KEYDATA' });
  assert.deepEqual(resolveSecrets(c.connections[2], { ANTHROPIC_API_KEY: 'k' }, c.file), { 'header:x-api-key': 'k' });
  assert.throws(() => resolveSecrets(c.connections[0], {}, c.file), /connection "app-db": upstream\.password reads environment variable APP_DB_PASSWORD, which is not set/);
  fs.unlinkSync(keyFile);
  assert.throws(() => resolveSecrets(c.connections[1], {}, c.file), /connection "web-1": upstream\.privateKey reads .*deploy_key: ENOENT/);
});
