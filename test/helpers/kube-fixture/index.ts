/**
 * A FIXTURE Kubernetes API server for the tests. No Kubernetes API server can be installed on
 * these machines (Debian ships kubectl only), so the tests drive real kubectl against this
 * in-process server, which implements what it serves as the Kubernetes API documents it:
 * - HTTPS with its own CA (tls.ts); bearer-token auth, or a client certificate signed by that
 *   CA when `clientCert` is set; anything else gets 401 with a `Status` object;
 * - `/version`, `/healthz`, legacy and aggregated discovery, `/openapi/v3` (discovery.ts);
 * - Namespaces, Pods, ConfigMaps, Secrets, Services, Events, ServiceAccounts, Deployments and
 *   ReplicaSets (apps/v1, with the scale and status subresources) (resources.ts): get, list with
 *   label/field selectors and `limit`/`continue`, watch (watch.ts), create, update with 409 on a
 *   stale resourceVersion, JSON / merge / strategic-merge patch, server-side apply with
 *   managedFields and conflicts (patch.ts, managed-fields.ts), delete with preconditions and
 *   propagation, deletecollection, `dryRun=All` (api.ts); JSON, YAML and protobuf request
 *   bodies (protobuf.ts: `kubectl create` sends protobuf), JSON answers;
 * - Table and PartialObjectMetadata responses (table.ts), gzip above 128 KiB;
 * - SelfSubjectAccessReview, SelfSubjectRulesReview and SelfSubjectReview (`kubectl auth
 *   can-i`, `auth whoami`): every authenticated caller may do everything;
 * - a deployment controller, so `rollout status|restart|undo` and `scale` complete (controller.ts);
 * - a kubelet (kubelet.ts): pods are Running at once; a container with a command runs it as a
 *   real process whose output is the pod's log and whose exit sets the pod's phase;
 * - `pods/log` with follow (logs.ts); `pods/exec`, `pods/attach` and `pods/portforward` over
 *   WebSocket and SPDY/3.1 (streams.ts), running real processes on this machine, with a pty
 *   for `-t` (container-process.ts). Port-forward reaches the local port named by the pod's
 *   annotation `fixture.flightlog.dev/port-<port>`.
 * Not served: other kinds and groups, protobuf responses, the metrics API, HTTP/2.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeApi, negotiate, parseBody, parseRoute, render, scaleOf, sendJson, sendStatus, type Route } from './api';
import { DeploymentController } from './controller';
import { defaultObject, runningPodStatus, timestamp, newMeta } from './defaults';
import { AGGREGATED_V2, AGGREGATED_V2BETA1, aggregated, apiGroupDoc, apiGroupList, apiResourceList, apiVersions, openapiV3, openapiV3Root, VERSION } from './discovery';
import { checkContainer, serveLogs, type LogSource } from './logs';
import { findResource, resourceKey, type KubeObject, type ResourceDef } from './resources';
import { fail, failure, StatusError } from './status';
import { makeFixtureCerts } from './tls';
import { serveWatch } from './watch';
import { closeStreams, handleUpgrade, type StreamOptions } from './streams';
import { killAll } from './container-process';
import { Kubelet } from './kubelet';

export interface KubeFixture {
  url: string;
  /** CA that signed the server certificate (SAN 127.0.0.1 + localhost) */
  caFile: string;
  caPem: string;
  /** the bearer token the fixture accepts (others get 401 Status JSON) */
  token: string;
  /** also accepted if opts.clientCert */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** a kubeconfig pointing kubectl straight at the fixture */
  kubeconfig: string;
  /** fast bulk pods (`seed-0` … ) for `get pods -A` benches */
  seedPods(namespace: string, count: number): void;
  /** what `kubectl logs` of that pod reads, called afresh for each request */
  setLogs(namespace: string, pod: string, chunks: () => AsyncIterable<Buffer> | Iterable<Buffer>): void;
  /** every request that reached it, in order */
  requests: Array<{ method: string; path: string; contentType?: string }>;
  close(): Promise<void>;
}

export interface KubeFixtureOptions {
  dir: string;
  token?: string;
  clientCert?: boolean;
}

const POD = findResource('', 'v1', 'pods') as ResourceDef;
const NAMESPACE = findResource('', 'v1', 'namespaces') as ResourceDef;

export { PORT_ANNOTATION } from './streams';

export async function startKubeFixture(opts: KubeFixtureOptions): Promise<KubeFixture> {
  fs.mkdirSync(opts.dir, { recursive: true });
  const certs = makeFixtureCerts(path.join(opts.dir, 'pki'));
  const token = opts.token ?? `fixture-${randomBytes(16).toString('hex')}`;
  const api = new KubeApi();
  const controller = new DeploymentController(api);
  const kubelet = new Kubelet(api, path.join(opts.dir, 'containers'));
  kubelet.start();
  api.hooks = {
    changed: (def, obj, created) => {
      controller.changed(def, obj);
      if (created) kubelet.created(def, obj);
    },
  };
  const logs = new Map<string, LogSource>();
  const requests: KubeFixture['requests'] = [];
  const streamOpts: StreamOptions = { kubelet };

  for (const ns of ['default', 'kube-system', 'kube-public']) {
    api.create(NAMESPACE, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, new URLSearchParams(), 'fixture');
  }

  const authorized = (req: http.IncomingMessage): boolean => {
    const auth = req.headers.authorization ?? '';
    if (auth === `Bearer ${token}`) return true;
    if (opts.clientCert) {
      const sock = req.socket as TLSSocket;
      return sock.authorized === true && !!sock.getPeerCertificate?.()?.subject;
    }
    return false;
  };

  const server = https.createServer({
    cert: certs.certPem,
    key: certs.keyPem,
    ca: certs.caPem,
    requestCert: !!opts.clientCert,
    rejectUnauthorized: false,
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://fixture');
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, contentType: req.headers['content-type'] });
    if (!authorized(req)) {
      sendJson(req, res, 401, failure(401, 'Unauthorized'));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, url, Buffer.concat(chunks)).catch((e) => {
        if (!res.headersSent) sendStatus(req, res, e);
        else res.destroy();
      });
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://fixture');
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, contentType: req.headers['content-type'] });
    const reject = (s: ReturnType<typeof failure>) => {
      const body = JSON.stringify(s);
      socket.end(`HTTP/1.1 ${s.code} ${http.STATUS_CODES[s.code]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    if (!authorized(req)) return reject(failure(401, 'Unauthorized'));
    try {
      const route = parseRoute(url.pathname);
      if (!route || route.def !== POD || !route.name || !['exec', 'attach', 'portforward'].includes(route.subresource ?? '')) fail(404, 'the server could not find the requested resource');
      const pod = api.mustGet(POD, route.namespace, route.name as string);
      handleUpgrade(req, socket, head, route.subresource as 'exec' | 'attach' | 'portforward', pod, url.searchParams, streamOpts);
    } catch (e) {
      reject(e instanceof StatusError ? e.status : failure(500, String(e)));
    }
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer): Promise<void> => {
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;
    const accept = String(req.headers.accept ?? '');
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      if (p === '/version') return sendJson(req, res, 200, VERSION);
      if (p === '/healthz' || p === '/livez' || p === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
        return;
      }
      if (p === '/api' || p === '/apis') {
        if (accept.includes('v=v2;as=APIGroupDiscoveryList') || accept.includes('v=v2beta1;as=APIGroupDiscoveryList')) {
          const v2 = accept.includes('v=v2;as=APIGroupDiscoveryList');
          return sendJson(req, res, 200, aggregated(p === '/api', v2 ? 'v2' : 'v2beta1'), v2 ? AGGREGATED_V2 : AGGREGATED_V2BETA1);
        }
        return sendJson(req, res, 200, p === '/api' ? apiVersions(`127.0.0.1:${(server.address() as AddressInfo).port}`) : apiGroupList());
      }
      if (p === '/openapi/v3') return sendJson(req, res, 200, openapiV3Root());
      if (p.startsWith('/openapi/v3/')) {
        const doc = openapiV3(p.slice('/openapi/v3/'.length));
        if (!doc) fail(404, 'the server could not find the requested resource');
        res.writeHead(200, { 'Content-Type': 'application/json', ETag: `"${doc.hash}"`, 'Cache-Control': 'public, immutable', 'Content-Length': Buffer.byteLength(doc.body) });
        res.end(doc.body);
        return;
      }
      const g = /^\/apis\/([^/]+)$/.exec(p);
      if (g) {
        const doc = apiGroupDoc(g[1]);
        return doc ? sendJson(req, res, 200, doc) : fail(404, 'the server could not find the requested resource');
      }
      const rl = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(p);
      if (rl) {
        const doc = rl[1] ? apiResourceList('', 'v1') : apiResourceList(rl[2], rl[3]);
        return doc ? sendJson(req, res, 200, doc) : fail(404, 'the server could not find the requested resource');
      }
    }
    const route = parseRoute(p);
    if (!route) fail(404, 'the server could not find the requested resource');
    return resource(req, res, route, q, raw, accept, method);
  };

  const resource = async (req: http.IncomingMessage, res: http.ServerResponse, route: Route, q: URLSearchParams, raw: Buffer, accept: string, method: string): Promise<void> => {
    const { def, namespace, name, subresource } = route;
    const neg = negotiate(accept);
    const ct = String(req.headers['content-type'] ?? 'application/json');
    const ua = String(req.headers['user-agent'] ?? '');
    const ok = (code: number, obj: KubeObject) => sendJson(req, res, code, subresource === 'scale' ? obj : render(def, obj, neg, q, false));
    if (subresource && !def.subresources.some((s) => s.name === subresource)) fail(404, 'the server could not find the requested resource');
    if (subresource === 'exec' || subresource === 'attach' || subresource === 'portforward') {
      fail(400, 'Upgrade request required');
    }
    if (def.virtual) {
      // Access reviews: the fixture authorizes every request it has authenticated.
      if (method !== 'POST' || name !== undefined) fail(405, 'the server does not allow this method on the requested resource');
      const review = { ...(parseBody(raw, ct) as Record<string, unknown>), apiVersion: `${def.group}/${def.version}`, kind: def.kind };
      const user = (req.headers.authorization ?? '') === `Bearer ${token}` ? 'fixture-admin' : String((req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN ?? 'fixture-admin');
      const status = def.kind === 'SelfSubjectRulesReview'
        ? { resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }], incomplete: false }
        : def.kind === 'SelfSubjectReview'
          ? { userInfo: { username: user, groups: ['system:masters', 'system:authenticated'] } }
          : { allowed: true, reason: 'the fixture authorizes every authenticated request' };
      return sendJson(req, res, 201, { ...review, metadata: { creationTimestamp: null }, status });
    }
    if (subresource === 'log') {
      if (method !== 'GET') fail(405, `${method} is not supported on pods/log`);
      const pod = api.mustGet(def, namespace, name as string);
      const container = checkContainer(pod, q.get('container'));
      const captured = kubelet.capturedLog(namespace ?? '', name as string, container);
      return serveLogs(pod, logs.get(`${namespace}/${name}`) ?? captured, q, req, res);
    }
    if (name === undefined) {
      switch (method) {
        case 'GET': {
          if (q.get('watch') === 'true' || q.get('watch') === '1') return serveWatch(api, def, namespace, q, neg, req, res);
          const list = api.list(def, namespace, q);
          return sendJson(req, res, 200, render(def, list, neg, q, true));
        }
        case 'POST': return ok(201, api.create(def, namespace, parseBody(raw, ct), q, ua));
        case 'DELETE': return sendJson(req, res, 200, api.deleteCollection(def, namespace, q));
        default: fail(405, `the server does not allow this method on the requested resource`);
      }
    }
    switch (method) {
      case 'GET': {
        const obj = api.mustGet(def, namespace, name);
        return ok(200, subresource === 'scale' ? scaleOf(def, obj) : obj);
      }
      case 'PUT': return ok(200, api.update(route, parseBody(raw, ct), q, ua));
      case 'PATCH': {
        const existed = !!api.get(def, namespace ?? '', name);
        return ok(existed ? 200 : 201, api.patch(route, ct, raw, q, ua));
      }
      case 'DELETE': {
        const out = api.delete(route, parseBody(raw, ct), q);
        return sendJson(req, res, 200, (out as KubeObject).metadata?.name ? render(def, out as KubeObject, neg, q, false) : out);
      }
      default: fail(405, 'the server does not allow this method on the requested resource');
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  const kubeconfig = path.join(opts.dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fixture',
    '  cluster:',
    `    server: ${url}`,
    `    certificate-authority: ${certs.caFile}`,
    'users:',
    '- name: fixture-admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fixture',
    '  context:',
    '    cluster: fixture',
    '    user: fixture-admin',
    '    namespace: default',
    'current-context: fixture',
    '',
  ].join('\n'), { mode: 0o600 });

  return {
    url,
    caFile: certs.caFile,
    caPem: certs.caPem,
    token,
    ...(opts.clientCert ? { clientCertFile: certs.clientCertFile, clientKeyFile: certs.clientKeyFile } : {}),
    kubeconfig,
    requests,
    seedPods(namespace: string, count: number): void {
      if (!api.get(NAMESPACE, '', namespace)) api.create(NAMESPACE, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, new URLSearchParams(), 'fixture');
      // Straight into the store: a bench seeds thousands, and each is an ordinary pod afterwards.
      for (let i = 0; i < count; i++) {
        const pod = {
          apiVersion: 'v1', kind: 'Pod',
          metadata: { name: `seed-${i}`, labels: { app: 'seed', index: String(i) } },
          spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] },
        } as unknown as KubeObject;
        newMeta(pod, namespace);
        defaultObject(POD, pod);
        (pod as unknown as { status: unknown }).status = runningPodStatus(pod, timestamp());
        api.store.put(resourceKey(POD), pod, 'ADDED');
      }
    },
    setLogs(namespace, pod, chunks) {
      logs.set(`${namespace}/${pod}`, chunks);
    },
    async close(): Promise<void> {
      controller.close();
      kubelet.close();
      closeStreams();
      killAll();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
