/**
 * The Kubernetes gateway with real kubectl (/usr/bin/kubectl) in front of the fixture API server
 * (test/helpers/kube-fixture): every verb recorded in kubectl's words, mutations before and after,
 * Secrets masked in the store and in a bundle, logs -f streamed as it arrives, exec recorded as a
 * terminal stream, port-forward off by default, bad tokens and a wrong upstream CA refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { recordedCommand, startTestGateway, type TestGateway } from '../helpers/gateway';
import { tempDir } from '../helpers/tmp';
import { startKubeFixture, type KubeFixture } from '../helpers/kube-fixture';
import { agentKubeconfig } from '../../gateway/kubernetes/kubeconfig';
import { listEvents } from '../../gateway/store/queries';
import { exportBundle } from '../../gateway/bundle';
import { ensureGatewayKey } from '../../gateway/store/chain';
import type { BlameReport, CommandView, RunStartResult } from '../../gateway/common/api-types';
import { agentEnvironment } from '../../gateway/cli/run-command';
import { captureCli, waitForPending } from '../helpers/cli';

const PLANTED = 'kube-planted-Pa55w0rd-6c1e9a7f3b';
const PLANTED_B64 = Buffer.from(PLANTED).toString('base64');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

let work: string;
let fx: KubeFixture;
let gw: TestGateway;
let token: string;
let kubeconfig: string;
const podsMade = new Set<string>();

function kubectl(args: string[], opts: { kubeconfig?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', opts.kubeconfig ?? kubeconfig, '--request-timeout=20s', ...args],
      { env: { ...process.env, HOME: work, KUBECACHEDIR: path.join(work, 'cache'), ...opts.env }, timeout: 60_000, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

async function ok(args: string[], opts: Parameters<typeof kubectl>[1] = {}): Promise<string> {
  const r = await kubectl(args, opts);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function kubeconfigFor(name: string, tok: string): string {
  const file = path.join(work, `kubeconfig-${name}-${Math.random().toString(36).slice(2, 8)}`);
  const a = gw.address(name);
  const ca = fs.readFileSync(path.join(gw.dataDir, 'postgres-tls', 'gateway-cert.pem'), 'utf8');
  fs.writeFileSync(file, agentKubeconfig([{ name, address: `${a.host}:${a.port}` }], 'claude', tok, ca), { mode: 0o600 });
  return file;
}

/** Creates objects straight on the fixture (set-up, not under test). */
async function applyDirect(yaml: string): Promise<void> {
  const file = path.join(work, `direct-${Math.random().toString(36).slice(2, 8)}.yaml`);
  fs.writeFileSync(file, yaml);
  await ok(['apply', '-f', file], { kubeconfig: fx.kubeconfig });
}

const pod = (name: string, ns: string): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  containers:\n  - {name: app, image: busybox}\n`;

const command = (predicate: (c: CommandView) => boolean): Promise<CommandView> =>
  recordedCommand(gw, predicate, 200).then(
    (r) => r.c,
    (err: Error) => {
      const seen = gw.sessions().flatMap((s) => gw.show(s.id).commands).filter((c) => /^(exec|attach|port)/.test(c.text)).map((c) => `${c.status} ${c.text}`);
      throw new Error(`${err.message}; recorded: ${seen.slice(-8).join(' | ')}`);
    },
  );
const resultOf = (c: CommandView): Record<string, unknown> => c.result as Record<string, unknown>;
const upstreamSaw = (method: string, re: RegExp): boolean => fx.requests.some((r) => r.method === method && re.test(r.path));

before(async () => {
  work = tempDir('flightlog-kube-');
  fx = await startKubeFixture({ dir: path.join(work, 'fixture') });
  const wrongCaDir = path.join(work, 'wrong-ca');
  fs.mkdirSync(wrongCaDir);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(wrongCaDir, 'k.pem'), '-out', path.join(wrongCaDir, 'ca.pem'), '-days', '2', '-subj', '/CN=not-the-cluster-ca'], { stdio: 'ignore' });
  const upstream = { server: fx.url, token: { env: 'FX_TOKEN' }, ca: { file: fx.caFile } };
  gw = await startTestGateway({
    env: { FX_TOKEN: fx.token },
    connections: [
      { name: 'cluster', protocol: 'kubernetes', upstream, identities: ['claude', 'claude-revoked', 'claude-streaming'] },
      { name: 'cluster-pf', protocol: 'kubernetes', upstream, identities: ['claude'], options: { allowPortForward: true } },
      { name: 'cluster-wrong-ca', protocol: 'kubernetes', upstream: { ...upstream, ca: { file: path.join(wrongCaDir, 'ca.pem') } }, identities: ['claude'] },
      { name: 'cluster-kubeconfig', protocol: 'kubernetes', upstream: { kubeconfig: fx.kubeconfig }, identities: ['claude'] },
      { name: 'cluster-live', protocol: 'kubernetes', upstream, identities: ['claude'], mask: 'live' },
    ],
    guardrails: [
      { name: 'no-prod-deploy-delete', match: { kubernetes: { verb: 'delete', resource: 'deployments', namespace: 'prod' } }, action: 'deny', reason: 'prod deployments are deleted by a human' },
      { name: 'prod-scale', match: { kubernetes: { verb: 'scale', namespace: 'prod' } }, action: 'hold', timeout: '30s' },
    ],
  });
  token = gw.addIdentity('claude');
  kubeconfig = kubeconfigFor('cluster', token);
  await applyDirect('apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n');
});

after(async () => {
  await gw?.close();
  await fx?.close();
});

describe('kubectl through the gateway', () => {
  it('get and describe are recorded in kubectl words with targets; the upstream sees the gateway login only', async () => {
    fx.seedPods('prod', 3);
    const out = await ok(['get', 'pods', '-n', 'prod']);
    assert.match(out, /seed-0/);
    const list = await command((c) => c.text === 'get pods -n prod');
    assert.equal(list.kind, 'kubectl');
    assert.equal(list.classification, 'read');
    assert.equal(resultOf(list).status, 200);
    const described = await ok(['describe', 'pod', 'seed-1', '-n', 'prod']);
    assert.match(described, /Name:\s+seed-1/);
    const get = await command((c) => c.text === 'get pod seed-1 -n prod');
    assert.deepEqual(get.targets, ['k8s:pods/prod/seed-1']);
    assert.deepEqual(gw.grepDataDir(fx.token), [], 'the upstream token is in no file and no log line');
    assert.deepEqual(gw.grepDataDir(token), [], 'the gateway token is in no file');
  });

  it('the kubeconfig + context form reaches the same cluster', async () => {
    const out = await ok(['get', 'namespaces'], { kubeconfig: kubeconfigFor('cluster-kubeconfig', token) });
    assert.match(out, /prod/);
  });

  it('apply, edit, patch, scale, rollout restart, delete: each with the object before and after, noise dropped', async () => {
    const manifest = (replicas: number, color: string) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: staging\n  labels: {color: ${color}}\nspec:\n  replicas: ${replicas}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: app, image: nginx:1.27}\n`;
    const file = path.join(work, 'web.yaml');
    fs.writeFileSync(file, manifest(1, 'blue'));
    await ok(['apply', '-f', file]);
    const created = await command((c) => c.text === 'create deployment web -n staging');
    assert.equal(resultOf(created).before, null);
    assert.equal((resultOf(created).after as { spec: { replicas: number } }).spec.replicas, 1);

    fs.writeFileSync(file, manifest(2, 'green'));
    await ok(['apply', '-f', file]);
    const applied = await command((c) => /^patch deployment web -n staging/.test(c.text));
    const before1 = resultOf(applied).before as { metadata: Record<string, unknown>; spec: { replicas: number } };
    const after1 = resultOf(applied).after as { metadata: Record<string, unknown>; spec: { replicas: number } };
    assert.equal(before1.spec.replicas, 1);
    assert.equal(after1.spec.replicas, 2);
    for (const o of [before1, after1]) {
      assert.equal(o.metadata.managedFields, undefined);
      assert.equal(o.metadata.resourceVersion, undefined);
    }
    assert.deepEqual(applied.targets, ['k8s:deployments.apps/staging/web']);

    fs.writeFileSync(path.join(work, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: staging}\ndata: {color: blue}\n');
    await ok(['apply', '-f', path.join(work, 'cm.yaml')]);
    const editor = path.join(work, 'editor.sh');
    fs.writeFileSync(editor, `#!/bin/sh\nsed -i 's/color: blue/color: purple/' "$1"\n`, { mode: 0o755 });
    await ok(['edit', 'configmap', 'app-config', '-n', 'staging'], { env: { KUBE_EDITOR: editor } });
    const edited = await command((c) => /^patch configmap app-config -n staging/.test(c.text));
    assert.equal((resultOf(edited).before as { data: Record<string, string> }).data.color, 'blue');
    assert.equal((resultOf(edited).after as { data: Record<string, string> }).data.color, 'purple');

    await ok(['patch', 'configmap', 'app-config', '-n', 'staging', '--type=merge', '-p', '{"data":{"size":"xl"}}']);
    const patched = await command((c) => c.text === 'patch configmap app-config -n staging --type=merge');
    assert.equal((resultOf(patched).after as { data: Record<string, string> }).data.size, 'xl');
    assert.equal(JSON.parse(JSON.stringify(resultOf(patched).requestBody)).json.data.size, 'xl');

    await ok(['scale', 'deployment', 'web', '-n', 'staging', '--replicas=4']);
    const scaled = await command((c) => /^scale deployment web -n staging/.test(c.text));
    assert.equal((resultOf(scaled).before as { spec: { replicas: number } }).spec.replicas, 2);
    assert.equal((resultOf(scaled).after as { spec: { replicas: number } }).spec.replicas, 4);

    await ok(['rollout', 'restart', 'deployment/web', '-n', 'staging']);
    await command((c) => c.text === 'rollout restart deployment web -n staging');

    // blame follows the object by its target, whatever kubectl called it, with each change
    await gw.flush();
    const blamed = await captureCli(['blame', 'k8s:deployment/staging/web', '--json', '--data-dir', gw.dataDir]);
    assert.equal(blamed.code, 0, blamed.stderr);
    const report = JSON.parse(blamed.stdout) as BlameReport;
    const writes = report.entries.filter((e) => e.access === 'write').map((e) => e.text);
    for (const re of [/^create deployment web -n staging/, /^patch deployment web -n staging/, /^scale deployment web -n staging/, /^rollout restart deployment web -n staging/]) {
      assert.ok(writes.some((t) => re.test(t)), `${re} in blame: ${JSON.stringify(writes)}`);
    }
    const scaleChange = report.entries.find((e) => /^scale deployment web/.test(e.text))?.change as { before: string | null; after: string | null } | null;
    assert.match(scaleChange?.before ?? '', /"replicas": 2/);
    assert.match(scaleChange?.after ?? '', /"replicas": 4/);

    await ok(['delete', 'configmap', 'app-config', '-n', 'staging']);
    const deleted = await command((c) => c.text === 'delete configmap app-config -n staging');
    assert.equal((resultOf(deleted).before as { data: Record<string, string> }).data.size, 'xl');
    assert.equal(resultOf(deleted).after, null);
  });

  it('a guardrail denies `delete deployment -n prod` with a Forbidden kubectl prints; nothing reaches the cluster', async () => {
    await applyDirect('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: prod}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: app, image: nginx}]}\n');
    const r = await kubectl(['delete', 'deployment', 'api', '-n', 'prod']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden.*flightlog: blocked by guardrail "no-prod-deploy-delete": prod deployments are deleted by a human/);
    assert.equal(upstreamSaw('DELETE', /\/namespaces\/prod\/deployments\/api$/), false);
    const blocked = await command((c) => c.text === 'delete deployment api -n prod');
    assert.equal(blocked.status, 'blocked');
    assert.ok(gw.findings().some((f) => f.category === 'guardrail' && f.kind === 'no-prod-deploy-delete'));
    await ok(['get', 'deployment', 'api', '-n', 'prod']);
  });

  it('a held `scale -n prod` waits for a human; approved, exactly it goes through', async () => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'scale', 'deployment', 'api', '-n', 'prod', '--replicas=3'], { env: { ...process.env, HOME: work } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? 1)));
    const pending = await waitForPending(gw.dataDir, /^scale deployment api -n prod/);
    assert.equal(pending.rule, 'prod-scale');
    assert.equal(upstreamSaw('PATCH', /\/namespaces\/prod\/deployments\/api\/scale$/), false, 'nothing forwarded while held');
    const approved = await captureCli(['approve', pending.id, '--reason', 'checked', '--data-dir', gw.dataDir], { env: { ...process.env, USER: 'alice' } });
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(await exited, 0, err);
    const scaled = await command((c) => /^scale deployment api -n prod/.test(c.text));
    assert.equal(scaled.status, 'ok');
    assert.equal((resultOf(scaled).after as { spec: { replicas: number } }).spec.replicas, 3);
  });

  it('a Secret is masked in the store and in an exported bundle, whatever shape it travels in', async () => {
    fs.writeFileSync(path.join(work, 'db-secret.yaml'), `apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata:\n  password: ${PLANTED_B64}\n`);
    await ok(['create', '-f', path.join(work, 'db-secret.yaml')]);
    const yaml = await ok(['get', 'secret', 'db', '-n', 'prod', '-o', 'yaml']);
    assert.ok(yaml.includes(PLANTED_B64), 'mask: record hands the agent the real value');
    await ok(['get', 'secrets', '-n', 'prod', '-o', 'json']);
    fs.writeFileSync(path.join(work, 'secret.yaml'), `apiVersion: v1\nkind: Secret\nmetadata: {name: api-key, namespace: prod}\nstringData:\n  key: ${PLANTED}-2\n`);
    await ok(['apply', '-f', path.join(work, 'secret.yaml')]);
    // kubectl create sends protobuf: recorded as size and hash, the answer asked for as JSON and masked
    await ok(['create', 'secret', 'generic', 'literal', '-n', 'prod', `--from-literal=token=${PLANTED}-4`]);
    const literal = await command((c) => /^create secret/.test(c.text) && c.status === 'ok');
    assert.match(JSON.stringify(resultOf(literal).requestBody), /size and hash only/);
    await ok(['patch', 'secret', 'db', '-n', 'prod', '--type=json', '-p', `[{"op":"replace","path":"/data/password","value":"${Buffer.from(PLANTED + '-3').toString('base64')}"}]`]);
    const got = await command((c) => c.text === 'get secret db -n prod');
    assert.match(JSON.stringify(got.result), /\[MASKED:/);
    await command((c) => c.text === 'get secrets -n prod');
    await command((c) => /^patch secret db -n prod/.test(c.text));
    assert.ok(gw.findings().some((f) => f.category === 'secret'), 'the sighting is a finding');
    await gw.flush();
    const sessions = gw.sessions().map((s) => s.id);
    const bundle = path.join(work, 'secrets.flightlog');
    await exportBundle(gw.gateway.db, { sessionIds: sessions.slice(0, 50), out: bundle, key: ensureGatewayKey(gw.dataDir) }).catch(async () => {
      // live sessions may not export on every build: export the closed ones
      await exportBundle(gw.gateway.db, { sessionIds: gw.sessions().filter((s) => s.status !== 'live').map((s) => s.id), out: bundle, key: ensureGatewayKey(gw.dataDir) });
    });
    for (const v of [PLANTED, PLANTED_B64, `${PLANTED}-2`, Buffer.from(`${PLANTED}-2`).toString('base64'), Buffer.from(PLANTED + '-3').toString('base64'), `${PLANTED}-4`, Buffer.from(`${PLANTED}-4`).toString('base64')]) {
      assert.deepEqual(gw.grepDataDir(v), [], `${v.slice(0, 8)}… is in no file of the data dir`);
      assert.equal(fs.readFileSync(bundle).includes(Buffer.from(v)), false, `${v.slice(0, 8)}… is not in the bundle`);
    }
  });

  it('a watch streams each change as it happens, recorded event by event; mask: live hands the agent masked Secrets', async () => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', 'configmaps', '-n', 'staging', '-w', '-o', 'name'], { env: { ...process.env, HOME: work } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    // the watch is open once the gateway has recorded it as running
    for (let i = 0; i < 400 && !gw.sessions().some((s) => gw.show(s.id).commands.some((c) => c.text === 'get configmaps -n staging --watch')); i++) {
      await gw.flush();
      await new Promise((r) => setTimeout(r, 25));
    }
    await applyDirect('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late-arrival, namespace: staging}\ndata: {x: "1"}\n');
    for (let i = 0; i < 400 && !out.includes('late-arrival'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, /configmap\/late-arrival/, 'the change reached kubectl while the watch was open');
    child.kill('SIGINT');
    await exited;
    const watch = await command((c) => c.text === 'get configmaps -n staging --watch');
    assert.equal(watch.status, 'ok', `a watch the client stops ends normally: ${watch.error}`);
    await gw.flush();
    const events = listEvents(gw.gateway.db, watch.sessionId, { afterSeq: 0, limit: 10000 }).events.filter((e) => e.commandId === watch.id && e.kind === 'k8s.watch');
    assert.ok(events.some((e) => JSON.stringify(e.data).includes('late-arrival')), 'the event is recorded');

    const live = await kubectl(['get', 'secret', 'db', '-n', 'prod', '-o', 'yaml'], { kubeconfig: kubeconfigFor('cluster-live', token) });
    assert.equal(live.code, 0, live.stderr);
    assert.ok(!live.stdout.includes(PLANTED_B64) && !live.stdout.includes(PLANTED), 'the agent never sees the value');
    assert.match(live.stdout, /password: .*MASKED/);
  });

  it('logs -f streams each line as it is written, and is recorded as it arrives', async () => {
    await applyDirect(pod('logger', 'prod'));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    fx.setLogs('prod', 'logger', async function* () {
      yield Buffer.from('first line\n');
      await released;
      yield Buffer.from('second line\n');
    });
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'logs', '-f', 'logger', '-n', 'prod'], { env: { ...process.env, HOME: work } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? 1)));
    for (let i = 0; i < 400 && !out.includes('first line'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, /first line/, 'the first line reached kubectl before the log ended: nothing buffered');
    assert.doesNotMatch(out, /second line/);
    release();
    assert.equal(await exited, 0);
    assert.match(out, /second line/);
    const logs = await command((c) => /^logs -f logger -n prod\b/.test(c.text));
    await gw.flush();
    const text = listEvents(gw.gateway.db, logs.sessionId, { afterSeq: 0, limit: 5000 })
      .events.filter((e) => e.kind === 'o')
      .map((e) => String(e.data))
      .join('');
    assert.match(text, /first line[\s\S]*second line/);
  });

  it('revoking an identity cuts its open `logs -f` within seconds', async () => {
    await applyDirect(pod('forever', 'prod'));
    fx.setLogs('prod', 'forever', async function* () {
      yield Buffer.from('still running\n');
      await new Promise(() => undefined);
    });
    const tok = gw.addIdentity('claude-streaming');
    const child = spawn('kubectl', ['--kubeconfig', kubeconfigFor('cluster', tok), 'logs', '-f', 'forever', '-n', 'prod'], { env: { ...process.env, HOME: work } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 400 && !out.includes('still running'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, /still running/);
    const t0 = Date.now();
    gw.revokeIdentity('claude-streaming');
    const cut = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
    if (cut === 'timeout') child.kill();
    assert.notEqual(cut, 'timeout', 'kubectl was cut off');
    assert.ok(Date.now() - t0 < 5000);
  });

  for (const [transport, env] of [
    ['WebSocket (v5.channel.k8s.io)', {}],
    ['SPDY/3.1', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }],
  ] as Array<[string, NodeJS.ProcessEnv]>) {
    it(`exec over ${transport}: stdout, stderr and the exit status reach kubectl and the recording`, async () => {
      if (!podsMade.has('shell')) {
        await applyDirect(pod('shell', 'prod'));
        podsMade.add('shell');
      }
      const word = `out-${transport.slice(0, 4).toLowerCase()}`;
      const r = await kubectl(['exec', 'shell', '-n', 'prod', '--', 'sh', '-c', `echo ${word}; echo err-${word} >&2; exit 3`], { env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stdout, new RegExp(word));
      assert.match(r.stderr, new RegExp(`err-${word}`));
      const c = await command((x) => x.text === `exec shell -n prod -c app -- sh -c 'echo ${word}; echo err-${word} >&2; exit 3'`);
      assert.equal(resultOf(c).exitCode, 3);
      assert.equal(c.status, 'error');
      await gw.flush();
      const events = listEvents(gw.gateway.db, c.sessionId, { afterSeq: 0, limit: 10000 }).events.filter((e) => e.commandId === c.id);
      assert.match(events.filter((e) => e.kind === 'o').map((e) => String(e.data)).join(''), new RegExp(word));
      assert.match(events.filter((e) => e.kind === 'e').map((e) => String(e.data)).join(''), new RegExp(`err-${word}`));
      assert.ok(events.some((e) => e.kind === 'exit'));
    });
  }

  it('exec -it driven through tmux is recorded as a terminal stream: what was typed, the screen, the size', async () => {
    if (!podsMade.has('shell')) {
      await applyDirect(pod('shell', 'prod'));
      podsMade.add('shell');
    }
    const sock = path.join(work, 'tmux.sock');
    const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', sock, ...args]).toString();
    const cmd = `env HOME=${work} kubectl --kubeconfig ${kubeconfig} exec -it shell -n prod -- sh`;
    tmux('new-session', '-d', '-s', 'k', '-x', '100', '-y', '30', cmd);
    try {
      const screen = (): string => tmux('capture-pane', '-p', '-t', 'k');
      const waitFor = async (re: RegExp): Promise<void> => {
        for (let i = 0; i < 600; i++) {
          if (re.test(screen())) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.fail(`screen never showed ${re}: ${screen()}`);
      };
      await waitFor(/[#$]\s*$/m);
      tmux('send-keys', '-t', 'k', '-l', 'echo typed-$((6*7))');
      tmux('send-keys', '-t', 'k', 'Enter');
      await waitFor(/typed-42/);
      tmux('send-keys', '-t', 'k', '-l', 'exit');
      tmux('send-keys', '-t', 'k', 'Enter');
      const c = await command((x) => x.text === 'exec -it shell -n prod -c app -- sh');
      await gw.flush();
      const events = listEvents(gw.gateway.db, c.sessionId, { afterSeq: 0, limit: 10000 }).events.filter((e) => e.commandId === c.id);
      assert.match(events.filter((e) => e.kind === 'i').map((e) => String(e.data)).join(''), /echo typed-\$\(\(6\*7\)\)/);
      assert.match(events.filter((e) => e.kind === 'o').map((e) => String(e.data)).join(''), /typed-42/);
      assert.ok(events.some((e) => e.kind === 'r' && /^\d+x\d+$/.test(String(e.data))), 'the terminal size is recorded');
    } finally {
      try {
        execFileSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
      } catch {
        // already gone with its only session
      }
    }
  });

  it('port-forward is refused by default with a clear Forbidden, and recorded when the connection allows it', async () => {
    const target = net.createServer((s) => s.end('hello from the pod\n'));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
    const podPort = (target.address() as net.AddressInfo).port;
    try {
      await applyDirect(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\n  annotations: {fixture.flightlog.dev/port-80: "${podPort}"}\nspec:\n  containers:\n  - {name: app, image: nginx}\n`);
      const denied = await kubectl(['port-forward', 'pod/web', '-n', 'prod', '0:80']);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr + denied.stdout, /port-forward is off on connection cluster/);
      assert.equal(upstreamSaw('POST', /\/pods\/web\/portforward/) || upstreamSaw('GET', /\/pods\/web\/portforward/), false);
      const blocked = await command((c) => c.text.startsWith('port-forward pod/web -n prod') && c.status === 'blocked');
      assert.equal(blocked.status, 'blocked');

      const pf = spawn('kubectl', ['--kubeconfig', kubeconfigFor('cluster-pf', token), 'port-forward', 'pod/web', '-n', 'prod', '0:80'], { env: { ...process.env, HOME: work } });
      let pfOut = '';
      pf.stdout.on('data', (d: Buffer) => (pfOut += d.toString()));
      pf.stderr.on('data', (d: Buffer) => (pfOut += d.toString()));
      let local = 0;
      for (let i = 0; i < 600 && !local; i++) {
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(pfOut);
        if (m) local = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(local, `kubectl port-forward started: ${pfOut}`);
      const got = await new Promise<string>((resolve, reject) => {
        const s = net.connect(local, '127.0.0.1');
        let d = '';
        s.on('data', (b) => (d += b.toString()));
        s.on('end', () => resolve(d));
        s.on('error', reject);
      });
      assert.match(got, /hello from the pod/);
      pf.kill('SIGINT');
      await new Promise((r) => pf.once('exit', r));
      const forwarded = await command((c) => c.text.startsWith('port-forward pod/web -n prod') && c.status === 'ok');
      assert.equal(forwarded.status, 'ok');
    } finally {
      target.close();
    }
  });

  it('a wrong token, a revoked identity and an ended run get Unauthorized; nothing is forwarded', async () => {
    const start = fx.requests.length;
    const wrong = await kubectl(['get', 'pods', '-n', 'prod'], { kubeconfig: kubeconfigFor('cluster', 'flt_not-a-real-token') });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /You must be logged in to the server \(flightlog: Unauthorized: the gateway token is not valid\)/);
    assert.equal(fx.requests.length, start, 'nothing reached the cluster');

    const doomed = gw.addIdentity('claude-revoked');
    assert.equal((await kubectl(['get', 'pods', '-n', 'prod'], { kubeconfig: kubeconfigFor('cluster', doomed) })).code, 0);
    gw.revokeIdentity('claude-revoked');
    const mid = fx.requests.length;
    const revoked = await kubectl(['get', 'pods', '-n', 'prod'], { kubeconfig: kubeconfigFor('cluster', doomed) });
    assert.notEqual(revoked.code, 0);
    assert.match(revoked.stderr, /flightlog: Unauthorized: the gateway token was revoked/);
    assert.equal(fx.requests.length, mid, 'nothing reached the cluster');

    // a `flightlog run`: the kubeconfig it writes (HTTPS, the gateway's certificate, the run token)
    const ctl = gw.gateway.control;
    const call = async (route: string, body: unknown): Promise<unknown> => {
      const res = await fetch(ctl.url + route, { method: 'POST', headers: { authorization: `Bearer ${ctl.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(res.ok, `${route}: ${res.status}`);
      return res.json();
    };
    const run = (await call('/api/runs', { identity: 'claude', argv: ['agent'], pid: process.pid })) as RunStartResult;
    const runDir = tempDir('flightlog-kube-run-');
    const env = agentEnvironment(run, 'claude', runDir, fs.readFileSync(path.join(gw.dataDir, 'postgres-tls', 'gateway-cert.pem'), 'utf8'));
    assert.ok(env.KUBECONFIG);
    const inRun = await kubectl(['--context', 'cluster', 'get', 'pods', '-n', 'prod'], { kubeconfig: env.KUBECONFIG });
    assert.equal(inRun.code, 0, inRun.stderr);
    const listed = await command((c) => c.text === 'get pods -n prod' && gw.sessions().some((s) => s.id === c.sessionId && s.run === run.runId));
    assert.ok(listed);
    await call(`/api/runs/${encodeURIComponent(run.runId)}/end`, { exitCode: 0 });
    const ended = await kubectl(['--context', 'cluster', 'get', 'pods', '-n', 'prod'], { kubeconfig: env.KUBECONFIG });
    assert.notEqual(ended.code, 0);
    assert.match(ended.stderr, /Unauthorized/);
  });
});

describe('upstream trust', () => {
  it('an API server whose certificate does not match the configured CA is refused with a clear error', async () => {
    const before = fx.requests.length;
    const cfg = kubeconfigFor('cluster-wrong-ca', token);
    const r = await kubectl(['get', 'pods', '-n', 'prod'], { kubeconfig: cfg });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TLS handshake with upstream 127\.0\.0\.1:\d+ failed .*the API server certificate does not match the connection's CA \(upstream\.ca\); nothing was forwarded/);
    assert.equal(fx.requests.length, before, 'nothing was forwarded');
  });
});
