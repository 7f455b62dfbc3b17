/**
 * Gateway.reload and the Settings routes against the real gateway and real HTTP upstreams on
 * loopback: live sessions on unchanged connections survive, removed listeners stop, a missing
 * secret changes nothing, and the routes refuse what a browser could forge cross-origin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { validateConfig } from '../../gateway/config/load';
import type { SettingsSnapshot } from '../../gateway/common/api-types';
import { startTestGateway, type TestGateway } from '../helpers/gateway';

let upstream: http.Server;
let upstreamUrl: string;

function conn(name: string, extra: Record<string, unknown> = {}) {
  return { name, protocol: 'http', listen: '127.0.0.1:0', upstream: { url: upstreamUrl }, identities: ['claude'], ...extra };
}

function config(conns: unknown[]) {
  return validateConfig({ connections: conns }, 'test-config.yaml');
}

/** GET through the gateway on a keep-alive agent, so consecutive requests share one TCP connection (one session). */
function get(agent: http.Agent, port: number, token: string, p = '/hello'): Promise<{ status: number; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, localPort: (res.socket as net.Socket | null)?.localPort ?? 0 }));
    });
    req.on('error', reject);
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

before(async () => {
  upstream = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`upstream saw ${req.url}`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => upstream.close(() => r())));

describe('Gateway.reload', () => {
  let gw: TestGateway;
  let token: string;
  before(async () => {
    gw = await startTestGateway({ connections: [conn('alpha')] });
    token = gw.addIdentity('claude');
  });
  after(() => gw.close());

  it('keeps a live session on an unchanged connection while another connection is added, then removed', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const alpha = gw.address('alpha');
    const first = await get(agent, alpha.port, token);
    assert.equal(first.status, 200);
    const listenerBefore = gw.gateway.listeners.get('alpha')?.listener;

    const added = await gw.gateway.reload(config([conn('alpha'), conn('beta')]));
    assert.deepEqual(added, { started: ['beta'], stopped: [], unchanged: ['alpha'] });
    assert.equal(gw.gateway.listeners.get('alpha')?.listener, listenerBefore, 'the unchanged listener is the same object');
    const beta = gw.address('beta');
    assert.equal((await get(new http.Agent(), beta.port, token)).status, 200, 'the new listener forwards');

    const second = await get(agent, alpha.port, token, '/again');
    assert.equal(second.body, 'upstream saw /again');
    assert.equal(second.localPort, first.localPort, 'same TCP connection: the session was not dropped');
    await gw.flush();
    const alphaSessions = gw.sessions().filter((s) => s.connection === 'alpha');
    assert.equal(alphaSessions.length, 1);
    assert.equal(alphaSessions[0].status, 'live');
    assert.equal(alphaSessions[0].commandCount, 2);

    const removed = await gw.gateway.reload(config([conn('alpha')]));
    assert.deepEqual(removed, { started: [], stopped: ['beta'], unchanged: ['alpha'] });
    assert.ok(await refused(beta.port), "the removed connection's listener stopped");
    assert.equal(gw.gateway.listeners.has('beta'), false);
    assert.equal((await get(agent, alpha.port, token, '/third')).localPort, first.localPort, 'still the same session');
    assert.deepEqual(gw.gateway.status().listeners.map((l) => l.connection), ['alpha']);
    agent.destroy();
  });

  it('restarts a changed connection, ending only its own sessions', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await gw.gateway.reload(config([conn('alpha'), conn('gamma')]));
    const gammaAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const a = await get(agent, gw.address('alpha').port, token);
    await get(gammaAgent, gw.address('gamma').port, token);
    const r = await gw.gateway.reload(config([conn('alpha'), conn('gamma', { mask: 'live' })]));
    assert.deepEqual(r, { started: ['gamma'], stopped: ['gamma'], unchanged: ['alpha'] });
    await gw.flush();
    const gammaSessions = gw.sessions().filter((s) => s.connection === 'gamma');
    assert.ok(gammaSessions.every((s) => s.status !== 'live'), 'the old gamma session was closed');
    assert.equal((await get(agent, gw.address('alpha').port, token)).localPort, a.localPort);
    agent.destroy();
    gammaAgent.destroy();
  });

  it('changes nothing when a secret is missing or a port is taken', async () => {
    const before = gw.gateway.status().listeners;
    await assert.rejects(
      gw.gateway.reload(config([conn('alpha'), conn('delta', { upstream: { url: upstreamUrl, bearer: { env: 'FLIGHTLOG_TEST_MISSING_VAR' } } })])),
      (err: Error & { code?: string }) => err.code === 'E_SECRET' && /FLIGHTLOG_TEST_MISSING_VAR, which is not set/.test(err.message),
    );
    assert.deepEqual(gw.gateway.status().listeners, before);
    const port = (upstream.address() as AddressInfo).port; // taken by the upstream
    await assert.rejects(gw.gateway.reload(config([conn('alpha'), conn('epsilon', { listen: `127.0.0.1:${port}` })])), (err: Error & { code?: string }) => err.code === 'E_ADDR_IN_USE');
    assert.deepEqual(gw.gateway.status().listeners, before);
    assert.deepEqual(
      gw.gateway.config.connections.map((c) => c.name),
      before.map((l) => l.connection),
    );
  });
});

describe('Settings routes', () => {
  let gw: TestGateway;
  let base: string;
  let auth: Record<string, string>;
  before(async () => {
    gw = await startTestGateway();
    base = gw.gateway.control.url;
    auth = { authorization: `Bearer ${gw.gateway.control.token}` };
  });
  after(() => gw.close());

  const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(base + p, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('creates an identity (token once), adds a connection that listens and forwards, and lists both', async () => {
    const created = await post('/api/identities', { name: 'claude', kind: 'agent' });
    assert.equal(created.status, 201);
    const { token } = (await created.json()) as { token: string };
    assert.ok(token.length > 20);
    assert.equal((await post('/api/identities', { name: 'claude', kind: 'agent' })).status, 409, 'no second token for a live identity');

    const saved = await post('/api/settings/connections', { connection: { ...conn('web'), listen: '127.0.0.1:0' } });
    assert.equal(saved.status, 200, await saved.clone().text());
    const snap = (await saved.json()) as SettingsSnapshot;
    assert.equal(snap.connections[0].name, 'web');
    assert.ok(snap.configExists);
    assert.equal(snap.configFile, `${gw.dataDir}/flightlog.yaml`);
    const listener = snap.listeners.find((l) => l.connection === 'web');
    assert.ok(listener?.address);
    assert.ok(!JSON.stringify(snap).includes(token), 'no token in settings');
    const port = Number(listener.address.split(':').pop());
    assert.equal((await get(new http.Agent(), port, token, '/via-settings')).body, 'upstream saw /via-settings');

    const revoke = await fetch(`${base}/api/identities/claude/revoke`, { method: 'POST', headers: auth });
    assert.equal(revoke.status, 200);
    assert.equal((await get(new http.Agent(), port, token)).status, 401);
    const del = await fetch(`${base}/api/settings/connections/web`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 200);
    assert.ok(await refused(port));
  });

  it('answers a bad form value with the validator’s one line and the field path, and a missing env var without touching the file', async () => {
    const file = `${gw.dataDir}/flightlog.yaml`;
    const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
    const bad = await post('/api/settings/connections', { connection: { ...conn('web'), upstream: { url: 'ftp://example.com' } } });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { code: string; message: string; path: string } };
    assert.equal(body.error.code, 'E_CONFIG');
    assert.equal(body.error.path, 'connections[0].upstream.url');
    assert.match(body.error.message, /flightlog\.yaml:\d+: connections\[0\]\.upstream\.url: expected an http\(s\) URL, got "ftp:\/\/example\.com"$/);

    const inline = await post('/api/settings/connections', { connection: { ...conn('web'), upstream: { url: upstreamUrl, bearer: 'sk-hunter2' } } });
    assert.equal(inline.status, 400);
    const inlineText = await inline.text();
    assert.match(inlineText, /secrets are referenced, never written here/);
    assert.ok(!inlineText.includes('hunter2'));

    const missing = await post('/api/settings/connections', { connection: { ...conn('web'), upstream: { url: upstreamUrl, bearer: { env: 'FLIGHTLOG_TEST_MISSING_VAR' } } } });
    assert.equal(missing.status, 400);
    assert.match(await missing.text(), /FLIGHTLOG_TEST_MISSING_VAR, which is not set/);
    assert.equal(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null, before);
  });

  it('refuses cross-origin and non-JSON writes', async () => {
    const evil = await post('/api/identities', { name: 'mallory' }, { origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    const form = await fetch(`${base}/api/identities`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{"name":"mallory"}' });
    assert.equal(form.status, 415);
    const queryToken = await fetch(`${base}/api/identities?token=${gw.gateway.control.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"mallory"}' });
    assert.equal(queryToken.status, 401);
    const noToken = await fetch(`${base}/api/settings`);
    assert.equal(noToken.status, 401);
    const sameOrigin = await post('/api/identities', { name: 'ok-agent' }, { origin: base });
    assert.equal(sameOrigin.status, 201);
    const list = (await (await fetch(`${base}/api/settings`, { headers: auth })).json()) as SettingsSnapshot;
    assert.deepEqual(
      list.identities.map((i) => i.name).filter((n) => n !== 'claude'),
      ['ok-agent'],
    );
  });
});
