/**
 * The route map and the server agree: every mapped route is answered by a running gateway (its
 * own routes, settings, replay, the live feed) or the bundle viewer, and the server finds routes
 * only through the map (no hand-parsed paths, no /api/ literal the map does not name).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { Gateway } from '../../gateway/gateway';
import { validateConfig } from '../../gateway/config/load';
import { addIdentity } from '../../gateway/store/identities';
import { createUiRoutes, type UiRoutes } from '../../gateway/control-api/static';
import { startControlApi, type ControlApi } from '../../gateway/control-api/server';
import { matchRoute, routeNames, routePath, routes, type ParamsOf, type ResultOf, type RouteName, type RouteSpec } from '../../gateway/common/routes';
import type { GatewayStatus } from '../../gateway/common/api-types';

const ROOT = path.resolve(__dirname, '../../..');
/** The files that answer control API requests. */
const SERVER_SOURCES = ['gateway/control-api/server.ts', 'gateway/control-api/static.ts', 'gateway/replay/replay-routes.ts', 'gateway/settings/settings-routes.ts', 'gateway/settings/setup-routes.ts'];

function examplePath(name: RouteName): string {
  const spec: RouteSpec = routes[name];
  const params = Object.fromEntries((spec.path.match(/:\w+/g) ?? []).map((p) => [p.slice(1), 'x']));
  return routePath(name, params as ParamsOf<typeof name>);
}

/** True when the server answered the request as one of its routes (any status but "no such route"). */
async function answered(base: string, token: string, spec: RouteSpec, p: string): Promise<{ ok: boolean; status: number; body: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  const init: RequestInit = { method: spec.method, headers };
  if (spec.method !== 'GET') {
    headers['content-type'] = 'application/json';
    init.body = '{}';
  }
  const r = await fetch(base + p, init);
  const body = await r.text();
  const code = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
  const noRoute = (r.status === 404 && /^no route/.test(code?.message ?? '')) || code?.code === 'E_METHOD';
  return { ok: !noRoute, status: r.status, body };
}

describe('route map', () => {
  let dataDir = '';
  let gateway: Gateway;
  let ui: UiRoutes;
  let viewer: ControlApi;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-routes-'));
    fs.mkdirSync(path.join(dataDir, 'viewer'));
    gateway = await Gateway.start({
      config: validateConfig({ connections: [] }, 'routes-test.yaml'),
      dataDir,
      env: process.env,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      controlExtra: (db) => (ui = createUiRoutes({ db, rendererDir: dataDir })).extra,
    });
    // the opened-bundles viewer: read-only, and the one server with `POST /api/bundles/trust`
    const status = (): GatewayStatus => ({ version: 't', dataDir: '(opened bundles)', keyFingerprint: '', listeners: [], liveSessions: 0, bundles: [] });
    viewer = await startControlApi({ db: gateway.db, dataDir: path.join(dataDir, 'viewer'), host: '127.0.0.1', port: 0, status, trustBundleKey: async () => ({ trusted: { name: 'n', fingerprint: 'f' }, bundles: [] }) });
  });

  after(async () => {
    await viewer?.close();
    await gateway?.stop('test finished');
    ui?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('every mapped route is answered by a server, with the map’s method', async () => {
    const missing: string[] = [];
    for (const name of routeNames) {
      const spec: RouteSpec = routes[name];
      const p = examplePath(name);
      if (spec.websocket) {
        const ws = new WebSocket(gateway.control.url.replace('http', 'ws') + p, ['flightlog.v1', `bearer.${gateway.control.token}`]);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => (ws.close(), resolve()));
          ws.once('error', reject);
        });
        continue;
      }
      const live = await answered(gateway.control.url, gateway.control.token, spec, p);
      const read = name === 'bundlesTrust' ? await answered(viewer.url, viewer.token, spec, p) : live;
      if (!live.ok && !read.ok) missing.push(`${spec.method} ${p} → ${live.status} ${live.body}`);
    }
    assert.deepEqual(missing, []);
  });

  it('a path or method outside the map is "no route" (the probe above can tell)', async () => {
    for (const [method, p] of [['GET', '/api/nope'], ['GET', '/api/sessions/x/nope'], ['DELETE', '/api/sessions/x'], ['POST', '/api/status']] as const) {
      const r = await answered(gateway.control.url, gateway.control.token, { method, path: p }, p);
      assert.equal(r.ok, false, `${method} ${p} → ${r.status} ${r.body}`);
    }
  });

  it('answers as before: 201 where the map says so, read-only and absent routes refused by name', async () => {
    const post = async (base: string, token: string, p: string, body: unknown) => {
      const r = await fetch(base + p, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as { error?: { code: string }; runId?: string } };
    };
    addIdentity(gateway.db, 'claude', 'agent');
    const run = await post(gateway.control.url, gateway.control.token, routePath('runStart', {}), { identity: 'claude', argv: ['psql'] });
    assert.equal(run.status, 201);
    assert.ok(run.body.runId);
    // a live gateway has no bundles to trust; the viewer writes nothing but trust
    assert.equal((await post(gateway.control.url, gateway.control.token, '/api/bundles/trust', { file: 'a', fingerprint: 'b', name: 'c' })).body.error?.code, 'E_METHOD');
    assert.equal((await post(viewer.url, viewer.token, '/api/runs', { identity: 'claude' })).body.error?.code, 'E_READ_ONLY');
    assert.equal((await post(viewer.url, viewer.token, '/api/bundles/trust', { file: 1 })).body.error?.code, 'E_PARAM');
    const noToken = await fetch(gateway.control.url + '/api/status');
    assert.equal(noToken.status, 401);
    await noToken.body?.cancel();
  });

  it('the server finds routes only through the map', () => {
    const known = new Set(Object.values(routes).map((r: RouteSpec) => r.path));
    for (const file of SERVER_SOURCES) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      // no hand-parsed API paths: route params come from matchRoute (static.ts decodes file paths, not routes)
      if (!file.endsWith('static.ts')) assert.doesNotMatch(text, /pathname\.split\(|decodeURIComponent\(/, `${file} parses paths by hand`);
      for (const m of text.matchAll(/['"`](\/api\/[^'"`$]*)/g)) {
        const literal = m[1];
        const ok = known.has(literal) || (literal.endsWith('/') && [...known].some((k) => k.startsWith(literal)));
        assert.ok(ok, `${file}: ${literal} is not a route in gateway/common/routes.ts`);
      }
    }
  });

  it('paths round-trip: an id with a slash stays one segment; a bad escape matches nothing', () => {
    const p = routePath('events', { id: 'a/b c' });
    assert.equal(p, '/api/sessions/a%2Fb%20c/events');
    assert.deepEqual(matchRoute('GET', p), { name: 'events', params: { id: 'a/b c' } });
    assert.deepEqual(matchRoute('GET', '/api/sessions/'), { name: 'sessions', params: {} });
    assert.equal(matchRoute('GET', '/api/sessions/%zz'), null);
    assert.equal(matchRoute('POST', '/api/settings/connections/test')?.name, 'testConnection');
    assert.deepEqual(matchRoute('DELETE', '/api/settings/connections/test'), { name: 'deleteConnection', params: { name: 'test' } });
    // the result types are the gateway's own (a compile-time check)
    const status: ResultOf<'status'> = { version: '', dataDir: '', keyFingerprint: '', listeners: [], liveSessions: 0 };
    assert.equal(status.liveSessions, 0);
  });
});
