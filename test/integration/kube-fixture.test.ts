/**
 * The fixture Kubernetes API server (test/helpers/kube-fixture) driven directly by the real
 * kubectl: proves the fixture answers the way kubectl expects, so the gateway's Kubernetes tests
 * can trust it as their upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import WebSocket from 'ws';
import { startKubeFixture, type KubeFixture } from '../helpers/kube-fixture';
import { run, type RunResult } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('kube fixture driven by real kubectl', { timeout: 240_000 }, () => {
  let fx: KubeFixture;
  let work: string;
  const children = new Set<ChildProcess>();

  before(async () => {
    work = tempDir('flightlog-kube-fixture-');
    fx = await startKubeFixture({ dir: path.join(work, 'fixture') });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await fx?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const baseEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    // kubectl caches discovery under $HOME/.kube/cache: keep it in the test's dir.
    HOME: work,
    KUBECONFIG: fx.kubeconfig,
    ...extra,
  });
  const kubectl = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> =>
    run('kubectl', args, { env: baseEnv(opts.env), input: opts.input, timeoutMs: 60_000 });
  const ok = async (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> => {
    const r = await kubectl(args, opts);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const background = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const c = spawn('kubectl', args, { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    const out = { stdout: '', stderr: '' };
    c.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
    c.once('close', () => children.delete(c));
    return { child: c, out, exited: new Promise<number | null>((r) => c.once('close', (code) => r(code))) };
  };
  /** A raw HTTPS request to the fixture (what kubectl cannot be made to send). */
  const request = (method: string, p: string, headers: Record<string, string> = {}, body?: string) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = https.request(`${fx.url}${p}`, { method, ca: fx.caPem, headers: { Authorization: `Bearer ${fx.token}`, ...headers } }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('answers discovery, version and OpenAPI, and refuses a wrong token with a Status', async () => {
    assert.match(await ok(['version']), /Server Version: v1\.32/);
    const resources = await ok(['api-resources', '--no-headers']);
    for (const r of ['pods', 'configmaps', 'secrets', 'namespaces', 'deployments', 'replicasets']) assert.match(resources, new RegExp(`^${r}\\s`, 'm'));

    const agg = await request('GET', '/apis', { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
    assert.equal(agg.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    assert.equal(JSON.parse(agg.body).items[0].metadata.name, 'apps');
    const legacy = JSON.parse((await request('GET', '/apis/apps/v1')).body);
    assert.ok(legacy.resources.some((r: { name: string; kind: string }) => r.name === 'deployments/scale' && r.kind === 'Scale'));
    const root = JSON.parse((await request('GET', '/openapi/v3')).body);
    assert.match(root.paths['apis/apps/v1'].serverRelativeURL, /^\/openapi\/v3\/apis\/apps\/v1\?hash=/);

    const denied = await kubectl(['get', 'pods', '--token', 'not-the-token']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Unauthorized/);
    const raw = await request('GET', '/api/v1/pods', { Authorization: 'Bearer nope' });
    assert.equal(raw.status, 401);
    assert.deepEqual(JSON.parse(raw.body), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });

  it('accepts a client certificate signed by its CA when asked to', async () => {
    const certFx = await startKubeFixture({ dir: path.join(work, 'cert-fixture'), clientCert: true });
    try {
      assert.ok(certFx.clientCertFile && certFx.clientKeyFile);
      const args = ['--kubeconfig=/dev/null', `--server=${certFx.url}`, `--certificate-authority=${certFx.caFile}`,
        `--client-certificate=${certFx.clientCertFile}`, `--client-key=${certFx.clientKeyFile}`];
      assert.match(await ok([...args, 'get', 'ns', '-o', 'name']), /namespace\/default/);
      const noCert = await kubectl(['--kubeconfig=/dev/null', `--server=${certFx.url}`, `--certificate-authority=${certFx.caFile}`, '--token=wrong', 'get', 'ns']);
      assert.equal(noCert.code, 1);
      assert.match(noCert.stderr, /Unauthorized/);
    } finally {
      await certFx.close();
    }
  });

  it('creates from kubectl create (protobuf bodies), gets as tables, YAML and JSON, and selects by label', async () => {
    const secret = 'hunter2-planted-' + Date.now();
    await ok(['create', 'namespace', 'shop']);
    await ok(['create', 'configmap', 'app-config', '-n', 'shop', '--from-literal=mode=fast']);
    await ok(['create', 'secret', 'generic', 'db-creds', '-n', 'shop', `--from-literal=password=${secret}`]);
    await ok(['create', 'deployment', 'api', '-n', 'shop', '--image=nginx:1.27', '--replicas=2']);
    await ok(['create', 'service', 'clusterip', 'api', '-n', 'shop', '--tcp=80:8080']);

    const table = await ok(['get', 'configmaps,secrets,services', '-n', 'shop']);
    assert.match(table, /configmap\/app-config\s+1\s/);
    assert.match(table, /secret\/db-creds\s+Opaque\s+1\s/);
    assert.match(table, /service\/api\s+ClusterIP\s+10\.96\.\S+\s+<none>\s+80\/TCP/);
    const yaml = await ok(['get', 'secret', 'db-creds', '-n', 'shop', '-o', 'yaml']);
    assert.match(yaml, new RegExp(`password: ${Buffer.from(secret).toString('base64')}`));
    const asYaml = await request('GET', '/api/v1/namespaces/shop/secrets/db-creds', { Accept: 'application/yaml' });
    assert.equal(asYaml.headers['content-type'], 'application/yaml');
    assert.match(asYaml.body, new RegExp(`^kind: Secret$[\\s\\S]*password: ${Buffer.from(secret).toString('base64')}`, 'm'));
    const cm = JSON.parse(await ok(['get', 'configmap', 'app-config', '-n', 'shop', '-o', 'json']));
    assert.deepEqual(cm.data, { mode: 'fast' });
    assert.match(cm.metadata.resourceVersion, /^\d+$/);

    await waitFor('the deployment to be ready', async () => /2\/2/.test(await ok(['get', 'deploy', 'api', '-n', 'shop', '--no-headers'])));
    const pods = await ok(['get', 'pods', '-n', 'shop', '-l', 'app=api', '-o', 'wide', '--no-headers']);
    assert.equal(pods.trim().split('\n').length, 2);
    assert.match(pods, /^api-\S+\s+1\/1\s+Running\s+0\s+\S+\s+10\.244\.\d+\.\d+\s+fixture-node/m);
    assert.equal((await ok(['get', 'pods', '-n', 'shop', '-l', 'app!=api', '-o', 'name'])).trim(), '');
    assert.match(await ok(['describe', 'deployment', 'api', '-n', 'shop']), /Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available/);
    const dup = await kubectl(['create', 'configmap', 'app-config', '-n', 'shop']);
    assert.match(dup.stderr, /AlreadyExists|already exists/);
  });

  it('lists in chunks: kubectl get pods -A walks limit/continue over 1,200 pods', async () => {
    fx.seedPods('bulk-a', 700);
    fx.seedPods('bulk-b', 500);
    const before = fx.requests.length;
    const out = await ok(['get', 'pods', '-A', '--no-headers', '-l', 'app=seed']);
    assert.equal(out.trim().split('\n').length, 1200);
    const lists = fx.requests.slice(before).filter((r) => r.path.startsWith('/api/v1/pods?'));
    assert.ok(lists.length >= 3, `expected chunked lists, saw ${lists.map((r) => r.path).join(', ')}`);
    assert.ok(lists.slice(1).every((r) => /continue=/.test(r.path) && /limit=500/.test(r.path)));
    assert.match(await ok(['get', 'pods', '-A', '--field-selector', 'metadata.name=seed-699', '--no-headers']), /^bulk-a\s+seed-699\s/);
  });

  it('applies, edits, patches every way, dry-runs, and answers 409 on a stale update', async () => {
    const manifest = (image: string, a: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: ${image}
        env: [{name: A, value: "${a}"}, {name: B, value: "b"}]
      - name: sidecar
        image: busybox:1.36
`;
    // kubectl asks for strict field validation: a typo is a 400, unless validation is off
    const typo = manifest('nginx:1.27', 'a1').replace('replicas: 1', 'replica: 1');
    const strict = await kubectl(['apply', '-f', '-'], { input: typo });
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /BadRequest.*Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec\.replica"/);
    assert.match(await ok(['apply', '--validate=false', '--dry-run=server', '-f', '-'], { input: typo }), /created \(server dry run\)/);
    assert.match(await ok(['apply', '-f', '-'], { input: manifest('nginx:1.27', 'a1') }), /deployment.apps\/web created/);
    assert.match(await ok(['apply', '-f', '-'], { input: manifest('nginx:1.27', 'a2') }), /deployment.apps\/web configured/);
    const spec = () => ok(['get', 'deploy', 'web', '-o', 'jsonpath={.spec.template.spec.containers}']).then((s) => JSON.parse(s) as Array<{ name: string; image: string; env?: unknown[] }>);
    assert.deepEqual((await spec())[0].env, [{ name: 'A', value: 'a2' }, { name: 'B', value: 'b' }]);
    const applyPatch = fx.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith('/apis/apps/v1/namespaces/default/deployments/web')).pop();
    assert.equal(applyPatch?.contentType, 'application/strategic-merge-patch+json');

    // strategic merge: containers merge by name, the sidecar and env stay
    await ok(['patch', 'deploy', 'web', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}']);
    let c = await spec();
    assert.deepEqual(c.map((x) => `${x.name}=${x.image}`), ['app=nginx:1.28', 'sidecar=busybox:1.36']);
    assert.equal(c[0].env?.length, 2);
    // strategic merge $patch: delete by merge key
    await ok(['patch', 'deploy', 'web', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}']);
    assert.deepEqual((await spec()).map((x) => x.name), ['app']);
    // merge patch replaces lists; JSON patch addresses by index
    await ok(['patch', 'deploy', 'web', '--type=merge', '-p', '{"metadata":{"labels":{"tier":"front"}}}']);
    await ok(['patch', 'deploy', 'web', '--type=json', '-p', '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.29"},{"op":"test","path":"/metadata/labels/tier","value":"front"}]']);
    c = await spec();
    assert.equal(c[0].image, 'nginx:1.29');
    const failedTest = await kubectl(['patch', 'deploy', 'web', '--type=json', '-p', '[{"op":"test","path":"/metadata/labels/tier","value":"back"}]']);
    assert.equal(failedTest.code, 1);
    assert.match(failedTest.stderr, /test failed/);
    // dry-run=server answers the result without storing it
    const dry = await ok(['patch', 'deploy', 'web', '--type=merge', '-p', '{"metadata":{"labels":{"tier":"dry"}}}', '--dry-run=server', '-o', 'jsonpath={.metadata.labels.tier}']);
    assert.equal(dry, 'dry');
    assert.equal(await ok(['get', 'deploy', 'web', '-o', 'jsonpath={.metadata.labels.tier}']), 'front');

    // edit through KUBE_EDITOR
    const editor = path.join(work, 'editor.sh');
    fs.writeFileSync(editor, '#!/bin/sh\nsed -i "s/tier: front/tier: edited/" "$1"\n', { mode: 0o755 });
    assert.match(await ok(['edit', 'deploy', 'web'], { env: { KUBE_EDITOR: editor } }), /edited/);
    assert.equal(await ok(['get', 'deploy', 'web', '-o', 'jsonpath={.metadata.labels.tier}']), 'edited');

    // a replace carrying an old resourceVersion is a 409 Conflict
    await ok(['create', 'configmap', 'stale', '--from-literal=k=1']);
    const old = JSON.parse(await ok(['get', 'configmap', 'stale', '-o', 'json']));
    await ok(['patch', 'configmap', 'stale', '--type=merge', '-p', '{"data":{"k":"2"}}']);
    old.data.k = '3';
    const stale = await kubectl(['replace', '-f', '-'], { input: JSON.stringify(old) });
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /Conflict.*the object has been modified/);
    assert.equal(await ok(['get', 'configmap', 'stale', '-o', 'jsonpath={.data.k}']), '2');
  });

  it('server-side apply records managedFields and refuses to take another manager\'s field without --force-conflicts', async () => {
    const cm = (v: string, extra = '') => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {owned: "${v}"${extra}}\n`;
    assert.match(await ok(['apply', '--server-side', '-f', '-'], { input: cm('one') }), /serverside-applied/);
    const r = fx.requests.filter((x) => x.method === 'PATCH' && x.path.includes('/configmaps/ssa')).pop();
    assert.equal(r?.contentType, 'application/apply-patch+yaml');
    assert.match(r?.path ?? '', /fieldManager=kubectl/);

    const conflict = await kubectl(['apply', '--server-side', '--field-manager=other', '-f', '-'], { input: cm('two') });
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /conflict with "kubectl": \.data\.owned/);
    await ok(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-f', '-'], { input: cm('two', ', theirs: "x"') });
    const live = JSON.parse(await ok(['get', 'configmap', 'ssa', '-o', 'json', '--show-managed-fields']));
    assert.deepEqual(live.data, { owned: 'two', theirs: 'x' });
    const other = live.metadata.managedFields.find((m: { manager: string }) => m.manager === 'other');
    assert.equal(other.operation, 'Apply');
    assert.deepEqual(other.fieldsV1, { 'f:data': { 'f:owned': {}, 'f:theirs': {} } });
    // a manager that stops applying a field it alone owns removes it
    await ok(['apply', '--server-side', '--field-manager=other', '-f', '-'], { input: cm('two') });
    assert.deepEqual(JSON.parse(await ok(['get', 'configmap', 'ssa', '-o', 'json'])).data, { owned: 'two' });
  });

  it('scales, restarts and reports rollout status; get -w streams watch events', async () => {
    const watch = background(['get', 'deployments', '-w', '--output-watch-events', '--no-headers']);
    await ok(['create', 'deployment', 'roll', '--image=nginx:1.27']);
    await ok(['rollout', 'status', 'deployment/roll', '--timeout=20s']);
    assert.match(await ok(['scale', 'deployment/roll', '--replicas=3']), /scaled/);
    assert.match(await ok(['rollout', 'status', 'deployment/roll', '--timeout=20s']), /successfully rolled out/);
    assert.equal(await ok(['get', 'deploy', 'roll', '-o', 'jsonpath={.status.readyReplicas}']), '3');
    const steps = background(['get', 'deployment', 'roll', '-w', '--output-watch-events=false', '-o', 'jsonpath={.status.updatedReplicas}/{.status.replicas}{"\\n"}']);
    await waitFor('the watch to list the deployment', () => steps.out.stdout.startsWith('3/3\n'));
    assert.match(await ok(['rollout', 'restart', 'deployment/roll']), /restarted/);
    assert.match(await ok(['rollout', 'status', 'deployment/roll', '--timeout=20s']), /successfully rolled out/);
    // the rollout moves one pod at a time: 1, 2, then 3 updated replicas, old ones scaled down
    await waitFor('every rollout step in the watch', () => /^1\/3\n(.*\n)*2\/3\n(.*\n)*3\/3\n/m.test(steps.out.stdout.split('\n').slice(1).join('\n')));
    steps.child.kill();
    assert.match(await ok(['get', 'deploy', 'roll', '-o', 'jsonpath={.spec.template.metadata.annotations}']), /kubectl.kubernetes.io\/restartedAt/);
    assert.equal(await ok(['get', 'deploy', 'roll', '-o', 'jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}']), '2');
    const scale = JSON.parse((await request('GET', '/apis/apps/v1/namespaces/default/deployments/roll/scale')).body);
    assert.deepEqual({ kind: scale.kind, replicas: scale.spec.replicas, selector: scale.status.selector }, { kind: 'Scale', replicas: 3, selector: 'app=roll' });
    await ok(['delete', 'deployment', 'roll']);
    await waitFor('ADDED, MODIFIED and DELETED watch events', () => /ADDED\s+roll[\s\S]*MODIFIED\s+roll[\s\S]*DELETED\s+roll/.test(watch.out.stdout));
    watch.child.kill();
  });

  it('a watch with a label selector sees objects enter as ADDED and leave as DELETED', async () => {
    await ok(['create', 'configmap', 'teamed', '--from-literal=k=v']);
    const watch = background(['get', 'configmaps', '-l', 'team=a', '-w', '--output-watch-events', '--no-headers']);
    await waitFor('the filtered watch to start', () => fx.requests.some((r) => r.path.includes('labelSelector=team%3Da') && r.path.includes('watch=true')));
    await ok(['label', 'configmap', 'teamed', 'team=a']);
    await waitFor('ADDED when the label starts matching', () => /^ADDED\s+teamed\s/m.test(watch.out.stdout));
    await ok(['label', 'configmap', 'teamed', 'team=b', '--overwrite']);
    await waitFor('DELETED when it stops matching', () => /^DELETED\s+teamed\s/m.test(watch.out.stdout));
    assert.doesNotMatch(watch.out.stdout, /MODIFIED/);
    watch.child.kill();
  });

  it('deletes with propagation (the deployment takes its replica sets and pods), orphans on request, and deletes collections', async () => {
    await ok(['create', 'deployment', 'gone', '--image=nginx:1.27', '--replicas=2']);
    await waitFor('pods of the deployment', async () => (await ok(['get', 'pods', '-l', 'app=gone', '-o', 'name'])).trim().split('\n').filter(Boolean).length === 2);
    assert.match(await ok(['delete', 'deployment', 'gone']), /deployment.apps "gone" deleted/);
    assert.equal((await ok(['get', 'rs,pods', '-l', 'app=gone', '-o', 'name'])).trim(), '');

    await ok(['create', 'deployment', 'orphans', '--image=nginx:1.27']);
    await waitFor('the orphans pod', async () => (await ok(['get', 'pods', '-l', 'app=orphans', '-o', 'name'])).trim());
    await ok(['delete', 'deployment', 'orphans', '--cascade=orphan']);
    assert.match(await ok(['get', 'pods', '-l', 'app=orphans', '-o', 'name']), /pod\/orphans-/);

    for (const n of ['x1', 'x2', 'keep']) await ok(['create', 'configmap', `dc-${n}`, '--from-literal=k=v']);
    await ok(['label', 'configmap', 'dc-x1', 'dc-x2', 'batch=x']);
    const res = await request('DELETE', '/api/v1/namespaces/default/configmaps?labelSelector=batch%3Dx');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body).items.map((i: { metadata: { name: string } }) => i.metadata.name), ['dc-x1', 'dc-x2']);
    assert.deepEqual((await ok(['get', 'configmaps', '-o', 'name'])).split('\n').filter((l) => l.includes('dc-')), ['configmap/dc-keep']);
    const missing = await kubectl(['delete', 'configmap', 'dc-x1']);
    assert.match(missing.stderr, /NotFound.*configmaps "dc-x1" not found/);
  });

  for (const transport of ['WebSocket', 'SPDY'] as const) {
    it(`exec over ${transport}: stdin, stdout, stderr and the exit code`, async () => {
      const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: transport === 'WebSocket' ? 'true' : 'false' };
      await kubectl(['run', 'shell', '--image=busybox:1.36']);
      const r = await kubectl(['exec', '-i', 'shell', '--', 'sh', '-c', 'read line; echo "out:$line"; echo "err:$line" >&2; exit 3'], { env, input: 'hello\n' });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'out:hello\n');
      assert.match(r.stderr, /err:hello\n[\s\S]*command terminated with exit code 3/);
      const cat = await kubectl(['exec', '-i', 'shell', '--', 'wc', '-c'], { env, input: 'x'.repeat(200_000) });
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout.trim(), '200000');
      // past SPDY's 64 KiB initial window: kubectl's SPDY side never sends WINDOW_UPDATE
      const big = await kubectl(['exec', 'shell', '--', 'head', '-c', '3000000', '/dev/zero'], { env });
      assert.equal(big.code, 0, big.stderr);
      assert.equal(big.stdout.length, 3_000_000);
      const missing = await kubectl(['exec', 'shell', '--', 'no-such-command'], { env });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /executable file not found/);
      const upgrades = fx.requests.filter((x) => x.path.includes('/pods/shell/exec'));
      assert.equal(upgrades[upgrades.length - 1].method, transport === 'WebSocket' ? 'GET' : 'POST');
    });
  }

  for (const transport of ['WebSocket', 'SPDY'] as const) {
    it(`exec -it over ${transport} through tmux: a terminal, resize and exit status`, async () => {
      await kubectl(['run', 'tty', '--image=busybox:1.36']);
      const sock = path.join(work, `tmux-${transport}.sock`);
      const tmux = (...args: string[]) => new Promise<string>((resolve) => execFile('tmux', ['-S', sock, ...args], (_e, out) => resolve(out)));
      const env = `HOME=${work} KUBECONFIG=${fx.kubeconfig} KUBECTL_REMOTE_COMMAND_WEBSOCKETS=${transport === 'WebSocket'}`;
      await tmux('new-session', '-d', '-s', 'k', '-x', '100', '-y', '30', `env ${env} kubectl exec -it tty -- sh; echo "EXITED:$?"; sleep 30`);
      try {
        const screen = () => tmux('capture-pane', '-p', '-t', 'k');
        const type = async (line: string) => {
          await tmux('send-keys', '-t', 'k', '-l', line);
          await tmux('send-keys', '-t', 'k', 'Enter');
        };
        await waitFor('a shell prompt', async () => /[$#]\s*$/m.test(await screen()));
        await type('echo hi-$((6*7)); tty; stty size');
        await waitFor('the command output', async () => /hi-42\n\/dev\/pts\/\d+\n30 100/.test(await screen()));
        await tmux('resize-window', '-t', 'k', '-x', '120', '-y', '40');
        await waitFor('the resize to reach the pty', async () => {
          await type('stty size');
          await sleep(200);
          return /40 120/.test(await screen());
        });
        await type('exit 7');
        await waitFor('kubectl to exit with the shell\'s status', async () => /EXITED:7/.test(await screen()));
      } finally {
        await tmux('kill-server');
      }
    });
  }

  it('serves logs, and logs -f streams each chunk as it is made', async () => {
    await kubectl(['run', 'logger', '--image=busybox:1.36']);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    fx.setLogs('default', 'logger', async function* () {
      yield Buffer.from('first line\n');
      await gate;
      yield Buffer.from('second line\nthird line\n');
    });
    const follow = background(['logs', '-f', 'logger']);
    await waitFor('the first chunk before the log goes on', () => follow.out.stdout === 'first line\n');
    release();
    assert.equal(await follow.exited, 0);
    assert.equal(follow.out.stdout, 'first line\nsecond line\nthird line\n');
    assert.equal(await ok(['logs', 'logger', '--tail=1']), 'third line\n');
    fx.setLogs('default', 'logger', () => [Buffer.from('a\n'), Buffer.from('b\n')]);
    assert.equal(await ok(['logs', 'logger']), 'a\nb\n');
  });

  for (const transport of ['WebSocket', 'SPDY'] as const) {
    it(`port-forward over ${transport} reaches the pod's port`, async () => {
      const target = http.createServer((req, res) => res.end(req.url === '/big' ? 'z'.repeat(3_000_000) : `pod says ${req.url}`));
      await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
      try {
        const name = `pf-${transport.toLowerCase()}`;
        await ok(['apply', '-f', '-'], {
          input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  annotations: {fixture.flightlog.dev/port-8080: "${(target.address() as AddressInfo).port}"}\nspec:\n  containers: [{name: app, image: nginx}]\n`,
        });
        const pf = background(['port-forward', `pod/${name}`, ':8080'], { KUBECTL_PORT_FORWARD_WEBSOCKETS: transport === 'WebSocket' ? 'true' : 'false' });
        const port = await waitFor('the local port', () => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(pf.out.stdout)?.[1]));
        for (const p of ['/a', '/b']) {
          const body = await new Promise<string>((resolve, reject) => {
            http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
              let b = '';
              res.on('data', (d: Buffer) => (b += d.toString()));
              res.on('end', () => resolve(b));
            }).on('error', reject);
          });
          assert.equal(body, `pod says ${p}`);
        }
        const big = await new Promise<number>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: '/big', agent: false }, (res) => {
            let n = 0;
            res.on('data', (d: Buffer) => (n += d.length));
            res.on('end', () => resolve(n));
          }).on('error', reject);
        });
        assert.equal(big, 3_000_000);
        const upgrades = fx.requests.filter((x) => x.path.includes(`/pods/${name}/portforward`));
        assert.deepEqual(upgrades.map((u) => u.method), [transport === 'WebSocket' ? 'GET' : 'POST']);
        pf.child.kill();
        await pf.exited;
      } finally {
        target.close();
      }
    });
  }
  it('runs a pod\'s command like a kubelet: run -i --rm, a failed job\'s status and log, attach, auth can-i', async () => {
    const once = await kubectl(['run', 'once', '-i', '--rm', '--image=busybox:1.36', '--restart=Never', '--', 'sh', '-c', 'read x; echo "got:$x"'], { input: 'ping\n' });
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /got:ping/);
    assert.match(once.stdout + once.stderr, /pod "once" deleted/);

    await ok(['run', 'job', '--image=busybox:1.36', '--restart=Never', '--', 'sh', '-c', 'echo job-output; exit 2']);
    await waitFor('the job pod to fail', async () => /job\s+0\/1\s+Error\s/.test(await ok(['get', 'pod', 'job', '--no-headers'])));
    assert.equal(await ok(['get', 'pod', 'job', '-o', 'jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.exitCode}']), 'Failed 2');
    assert.equal(await ok(['logs', 'job']), 'job-output\n');
    const described = await ok(['describe', 'pod', 'job']);
    assert.match(described, /Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned default\/job to fixture-node/);
    assert.match(described, /Normal\s+Started\s+\S+\s+kubelet\s+Started container job/);
    assert.match(described, /Exit Code:\s+2/);

    await ok(['run', 'main', '--image=busybox:1.36', '-i', '--', 'sh']);
    const attached = await kubectl(['attach', '-i', 'main'], { input: 'echo "attached:$((2+3))"\nexit 0\n' });
    assert.match(attached.stdout, /attached:5/);

    assert.equal((await ok(['auth', 'can-i', 'delete', 'deployments'])).trim(), 'yes');
    assert.match(await ok(['auth', 'whoami']), /Username\s+fixture-admin/);
  });

  it('speaks the v4 and v5 WebSocket channel protocols to other clients', async () => {
    await kubectl(['run', 'raw', '--image=busybox:1.36']);
    const session = (proto: string, command: string[], send: (ws: WebSocket) => void) => new Promise<Map<number, string>>((resolve, reject) => {
      const q = new URLSearchParams([...command.map((c) => ['command', c]), ['stdin', 'true'], ['stdout', 'true'], ['stderr', 'true']]);
      const ws = new WebSocket(`${fx.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/raw/exec?${q}`, [proto], { ca: fx.caPem, headers: { Authorization: `Bearer ${fx.token}` } });
      const got = new Map<number, string>();
      ws.on('open', () => {
        assert.equal(ws.protocol, proto);
        send(ws);
      });
      ws.on('message', (m: Buffer) => got.set(m[0], (got.get(m[0]) ?? '') + m.subarray(1).toString()));
      ws.on('close', () => resolve(got));
      ws.on('error', reject);
    });
    const v4 = await session('v4.channel.k8s.io', ['sh', '-c', 'head -c 3; echo " err" >&2; exit 5'], (ws) => ws.send(Buffer.from('\x00abc', 'binary')));
    assert.equal(v4.get(1), 'abc');
    assert.equal(v4.get(2), ' err\n');
    const status = JSON.parse(v4.get(3) ?? '{}');
    assert.equal(status.reason, 'NonZeroExitCode');
    assert.deepEqual(status.details.causes, [{ reason: 'ExitCode', message: '5' }]);
    // v5 closes stdin with [255, 0]: cat sees EOF
    const v5 = await session('v5.channel.k8s.io', ['cat'], (ws) => {
      ws.send(Buffer.from('\x00hello', 'binary'));
      ws.send(Buffer.from([255, 0]));
    });
    assert.equal(v5.get(1), 'hello');
    assert.equal(JSON.parse(v5.get(3) ?? '{}').status, 'Success');
  });

  it('answers bad requests with Status objects: malformed bodies, unknown paths, a too-old watch, and gzips large lists', async () => {
    const bad = await request('POST', '/api/v1/namespaces/default/configmaps', { 'Content-Type': 'application/json' }, '{"kind": ');
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).kind, 'Status');
    const unknown = await request('GET', '/apis/nope.example/v1/things');
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).reason, 'NotFound');
    const invalid = await request('POST', '/api/v1/namespaces/default/configmaps', { 'Content-Type': 'application/json' }, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}');
    assert.equal(invalid.status, 422);
    assert.match(JSON.parse(invalid.body).message, /RFC 1123/);
    const gap = await request('POST', '/api/v1/namespaces/default/configmaps', { 'Content-Type': 'application/vnd.kubernetes.protobuf' }, 'not protobuf');
    assert.equal(gap.status, 400);

    const expired = await request('GET', '/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1');
    const event = JSON.parse(expired.body.trim().split('\n')[0]);
    assert.equal(event.type, 'ERROR');
    assert.equal(event.object.code, 410);

    fx.seedPods('gzip', 600);
    const zipped = await new Promise<{ encoding?: string; items: number }>((resolve, reject) => {
      https.get(`${fx.url}/api/v1/namespaces/gzip/pods`, { ca: fx.caPem, headers: { Authorization: `Bearer ${fx.token}`, 'Accept-Encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], items: JSON.parse(zlib.gunzipSync(Buffer.concat(chunks)).toString()).items.length }));
      }).on('error', reject);
    });
    assert.deepEqual(zipped, { encoding: 'gzip', items: 600 });
  });
  it('port-forwards over the kubelet\'s v4.channel.k8s.io WebSocket form that client libraries use', async () => {
    const target = http.createServer((req, res) => res.end(`pod says ${req.url}`));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    try {
      await ok(['apply', '-f', '-'], {
        input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pf-raw\n  annotations: {fixture.flightlog.dev/port-8080: "${(target.address() as AddressInfo).port}"}\nspec:\n  containers: [{name: app, image: nginx}]\n`,
      });
      const got = await new Promise<Buffer[]>((resolve, reject) => {
        const ws = new WebSocket(`${fx.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/pf-raw/portforward?ports=8080,9999`, ['v4.channel.k8s.io'], { ca: fx.caPem, headers: { Authorization: `Bearer ${fx.token}` } });
        const msgs: Buffer[] = [];
        ws.on('message', (m: Buffer) => {
          msgs.push(m);
          if (msgs.length === 4) ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('GET /raw HTTP/1.0\r\n\r\n')]));
        });
        ws.on('close', () => resolve(msgs));
        ws.on('error', reject);
      });
      // each channel opens with its port, little-endian
      assert.deepEqual(got.slice(0, 4).map((m) => [m[0], m.readUInt16LE(1)]), [[0, 8080], [1, 8080], [2, 9999], [3, 9999]]);
      assert.match(got.filter((m) => m[0] === 3).map((m) => m.subarray(1).toString()).join(''), /no target for port 9999/);
      assert.match(Buffer.concat(got.slice(4).filter((m) => m[0] === 0).map((m) => m.subarray(1))).toString(), /^HTTP\/1\.[01] 200[\s\S]*pod says \/raw$/);
    } finally {
      target.close();
    }
  });
  it('survives garbage after a SPDY upgrade and refuses an upgrade to a missing pod with a Status', async () => {
    await kubectl(['run', 'junk', '--image=busybox:1.36']);
    const upgrade = (p: string, tail: Buffer) => new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: Number(new URL(fx.url).port), ca: fx.caPem, servername: 'localhost' }, () => {
        sock.write(`POST ${p} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${fx.token}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n`);
        sock.end(tail);
      });
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff));
    const answer = await upgrade('/api/v1/namespaces/default/pods/junk/exec?command=sh&stdout=true', garbage);
    assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols/);
    const missing = await upgrade('/api/v1/namespaces/default/pods/no-such-pod/exec?command=sh&stdout=true', Buffer.alloc(0));
    assert.match(missing, /^HTTP\/1\.1 404 /);
    const status = JSON.parse(missing.slice(missing.indexOf('\r\n\r\n') + 4));
    assert.deepEqual([status.kind, status.reason, status.message], ['Status', 'NotFound', 'pods "no-such-pod" not found']);
    assert.match(await ok(['get', 'pod', 'junk', '-o', 'name']), /pod\/junk/);
  });
});
