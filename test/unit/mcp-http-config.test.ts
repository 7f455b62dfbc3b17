/** `protocol: mcp` with an HTTP upstream in flightlog.yaml: url, injected headers and bearer, with precise errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSecrets, validateConfig } from '../../gateway/config/load';
import type { McpHttpUpstream } from '../../gateway/common/config-schema';

const load = (upstream: unknown, extra: Record<string, unknown> = { listen: '127.0.0.1:8790' }) =>
  validateConfig({ connections: [{ name: 'tickets', protocol: 'mcp', upstream, identities: ['claude'], ...extra }] }, 'flightlog.yaml');

test('an MCP server over HTTP: url, headers (plain or secret) and bearer, served on listen', () => {
  const c = load({ url: 'https://mcp.example.com/mcp', bearer: { env: 'TICKETS_TOKEN' }, headers: { 'x-team': 'platform', 'x-api-key': { file: 'key.txt' } } });
  const conn = c.connections[0];
  assert.deepEqual(conn.listen, { host: '127.0.0.1', port: 8790 });
  const up = conn.upstream as McpHttpUpstream;
  assert.equal(up.url, 'https://mcp.example.com/mcp');
  assert.deepEqual(up.bearer, { env: 'TICKETS_TOKEN' });
  assert.deepEqual(up.headers, { 'x-team': 'platform', 'x-api-key': { file: 'key.txt' } });
  const secrets = resolveSecrets({ ...conn, upstream: { url: up.url, bearer: { env: 'T' } } as McpHttpUpstream }, { T: 'tok-value' }, null);
  assert.deepEqual(secrets, { bearer: 'tok-value' });
});

test('bad HTTP upstreams are refused with the path and what was expected', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ url: 'ftp://x/mcp' }, /connections\[0\]\.upstream\.url: expected an http\(s\) URL, got "ftp:\/\/x\/mcp"/],
    [{ url: 'https://user:pw@x/mcp' }, /upstream\.url: credentials do not belong in the URL/],
    [{ url: 'https://x/mcp', headers: { authorization: 'Bearer inline' } }, /upstream\.headers\.authorization: secrets are referenced, never written here/],
    [{ url: 'https://x/mcp', bearer: 'inline' }, /upstream\.bearer: secrets are referenced/],
    [{ url: 'https://x/mcp', token: { env: 'X' } }, /upstream\.token: unknown key "token"/],
  ];
  for (const [upstream, re] of cases) assert.throws(() => load(upstream), (e: Error) => re.test(e.message), String(re));
  assert.throws(() => load({ url: 'https://x/mcp' }, {}), /connections\[0\]\.listen: expected host:port/);
});
