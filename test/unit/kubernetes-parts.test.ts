import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { createMasker } from '../../gateway/masking';
import type { Json } from '../../gateway/common/types';
import { kubeTargets, kubectlText, parseKubeRequest, policyVerb, singular } from '../../gateway/kubernetes/request-info';
import { bodyFacts, dropNoise, maskSecrets, parseBody } from '../../gateway/kubernetes/objects';
import { agentKubeconfig } from '../../gateway/kubernetes/kubeconfig';
import { compileGuardrails } from '../../gateway/policy';
import { validateConfig } from '../../gateway/config/load';
import { matchesCommand } from '../../gateway/http/lineage';

const line = (method: string, url: string, contentType = '', body: Json | null = null): string =>
  kubectlText(parseKubeRequest(method, url, contentType), bodyFacts(body));

test('kubectl-like text for every verb', () => {
  const cases: Array<[string, string, string, string, Json | null]> = [
    ['GET', '/api/v1/namespaces/prod/pods', '', 'get pods -n prod', null],
    ['GET', '/api/v1/pods?limit=500', '', 'get pods -A', null],
    ['GET', '/api/v1/nodes', '', 'get nodes', null],
    ['GET', '/api/v1/namespaces/prod/secrets', '', 'get secrets -n prod', null],
    ['GET', '/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb', '', 'get pods -n prod -l app=web', null],
    ['GET', '/api/v1/namespaces/prod/pods?watch=true&resourceVersion=5', '', 'get pods -n prod --watch', null],
    ['GET', '/apis/apps/v1/namespaces/prod/deployments/web', '', 'get deployment web -n prod', null],
    ['GET', '/api/v1/namespaces/prod', '', 'get namespace prod', null],
    ['DELETE', '/apis/apps/v1/namespaces/prod/deployments/web', '', 'delete deployment web -n prod', null],
    ['DELETE', '/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb', '', 'delete pods -n prod -l app=web', null],
    ['PATCH', '/api/v1/namespaces/staging/configmaps/app-config', 'application/merge-patch+json', 'patch configmap app-config -n staging --type=merge', null],
    ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web?fieldManager=kubectl&force=true', 'application/apply-patch+yaml', 'apply deployment web -n prod --server-side --field-manager=kubectl', null],
    ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale', 'application/merge-patch+json', 'scale deployment web -n prod --replicas=3', { spec: { replicas: 3 } }],
    ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', 'application/strategic-merge-patch+json', 'rollout restart deployment web -n prod', { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' } } } } }],
    ['POST', '/apis/apps/v1/namespaces/prod/deployments?dryRun=All&fieldManager=kubectl-create', 'application/json', 'create deployment web -n prod --dry-run=server', { metadata: { name: 'web' } }],
    ['PUT', '/api/v1/namespaces/prod/configmaps/c', 'application/json', 'replace configmap c -n prod', null],
    ['GET', '/api/v1/namespaces/prod/pods/web-7f9/log?follow=true&container=app', '', 'logs -f web-7f9 -n prod -c app', null],
    ['POST', '/api/v1/namespaces/prod/pods/web-7f9/exec?command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&tty=true', '', "exec -it web-7f9 -n prod -c app -- sh -c 'echo hi'", null],
    ['GET', '/api/v1/namespaces/prod/pods/web-7f9/exec?command=ls&stdout=true', '', 'exec web-7f9 -n prod -- ls', null],
    ['POST', '/api/v1/namespaces/prod/pods/web/portforward?ports=8080', '', 'port-forward pod/web -n prod 8080', null],
    ['GET', '/apis', '', 'discovery GET /apis', null],
    ['GET', '/version', '', 'discovery GET /version', null],
    ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'application/json', 'auth selfsubjectaccessreview', null],
  ];
  for (const [m, u, ct, want, body] of cases) assert.equal(line(m, u, ct, body), want, `${m} ${u}`);
});

test('detail, targets and classification', () => {
  const r = parseKubeRequest('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web?dryRun=All');
  assert.equal(r.verb, 'delete');
  assert.equal(r.group, 'apps');
  assert.equal(r.version, 'v1');
  assert.equal(r.dryRun, true);
  assert.equal(r.mutation, true);
  assert.equal(r.classification, 'write');
  assert.deepEqual(kubeTargets(r), ['k8s:deployments.apps/prod/web']);
  const c = parseKubeRequest('POST', '/api/v1/namespaces/prod/configmaps');
  assert.deepEqual(kubeTargets(c, { name: 'app' }), ['k8s:configmaps/prod/app']);
  assert.deepEqual(kubeTargets(parseKubeRequest('DELETE', '/api/v1/namespaces/prod/pods')), ['k8s:pods/prod/*']);
  const ns = parseKubeRequest('GET', '/api/v1/namespaces/prod/status');
  assert.equal(ns.resource, 'namespaces');
  assert.equal(ns.name, 'prod');
  assert.equal(ns.subresource, 'status');
  const w = parseKubeRequest('GET', '/api/v1/watch/namespaces/prod/pods');
  assert.equal(w.verb, 'watch');
  assert.equal(w.streaming, true);
  assert.equal(parseKubeRequest('GET', '/api/v1/namespaces/p/pods/x/log').streaming, false);
  assert.equal(policyVerb(parseKubeRequest('POST', '/api/v1/namespaces/p/pods/x/portforward')), 'port-forward');
  assert.equal(policyVerb(parseKubeRequest('PATCH', '/apis/apps/v1/namespaces/p/deployments/x/scale')), 'scale');
  assert.equal(parseKubeRequest('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews').mutation, false);
  for (const [p, s] of [['pods', 'pod'], ['networkpolicies', 'networkpolicy'], ['ingresses', 'ingress'], ['storageclasses', 'storageclass'], ['endpoints', 'endpoints'], ['leases', 'lease']]) assert.equal(singular(p), s);
  // nonsense never throws
  for (const u of ['', '/', '//api//', '/apis/x', '/api/v1/namespaces', '/%zz/%', '/api/v1/namespaces/a/b/c/d/e/f']) parseKubeRequest('GET', u);
});

const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(7) });
const PLANT = 'kube-planted-s3cret-9f8e7d6c5b4a';
const b64 = Buffer.from(PLANT).toString('base64');

test('Secrets masked as an object, a list item without kind, a watch event, a JSON patch and stringData', () => {
  const shapes: Json[] = [
    { kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data: { password: b64 } },
    { kind: 'SecretList', apiVersion: 'v1', items: [{ metadata: { name: 's' }, data: { password: b64 }, type: 'Opaque' }] },
    { type: 'ADDED', object: { kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data: { password: b64 } } },
    { kind: 'List', apiVersion: 'v1', items: [{ kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, stringData: { password: PLANT } }] },
  ];
  for (const s of shapes) {
    const r = maskSecrets(masker, s, true);
    const text = JSON.stringify(r.value);
    assert.ok(!text.includes(b64) && !text.includes(PLANT), text);
    assert.ok(text.includes('[MASKED:'), text);
    assert.ok(r.hits.length >= 1);
  }
  const patch = maskSecrets(masker, [{ op: 'replace', path: '/data/password', value: b64 }], true);
  assert.ok(!JSON.stringify(patch.value).includes(b64));
  const merge = maskSecrets(masker, { data: { password: b64 } }, true);
  assert.ok(!JSON.stringify(merge.value).includes(b64));
  // a ConfigMap list is left alone
  const cm: Json = { kind: 'ConfigMapList', items: [{ metadata: { name: 'c' }, data: { color: 'blue' } }] };
  assert.deepEqual(maskSecrets(masker, cm, false).value, cm);
  const yamlApply = parseBody(Buffer.from(`apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: ${PLANT}\n`), 'application/apply-patch+yaml');
  assert.ok(!JSON.stringify(maskSecrets(masker, yamlApply as Json, true).value).includes(PLANT));
});

test('noise dropped from objects and list items; nothing else', () => {
  const o: Json = { kind: 'ConfigMap', metadata: { name: 'c', resourceVersion: '7', managedFields: [{ manager: 'kubectl' }], labels: { a: 'b' } }, data: { x: '1' } };
  assert.deepEqual(dropNoise(o), { kind: 'ConfigMap', metadata: { name: 'c', labels: { a: 'b' } }, data: { x: '1' } });
  assert.deepEqual(dropNoise({ items: [o] }), { items: [dropNoise(o)] });
});

test('agent kubeconfig: https to the gateway, its certificate as the CA, the run token', () => {
  const text = agentKubeconfig([{ name: 'prod', address: '127.0.0.1:6443' }], 'claude', 'flt_tok', '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
  const doc = parseYaml(text) as { clusters: Array<{ cluster: Record<string, string> }>; users: Array<{ user: { token: string } }>; 'current-context': string };
  assert.equal(doc.clusters[0].cluster.server, 'https://127.0.0.1:6443');
  assert.match(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), /BEGIN CERTIFICATE/);
  assert.equal(doc.users[0].user.token, 'flt_tok');
  assert.equal(doc['current-context'], 'prod');
});

test('config: server with token/ca/client cert, or kubeconfig + context; precise errors', () => {
  const conn = (upstream: unknown) => ({ connections: [{ name: 'k', protocol: 'kubernetes', listen: '127.0.0.1:0', upstream, identities: ['a'] }] });
  const ok = validateConfig(conn({ server: 'https://10.0.0.1:6443', token: { env: 'K8S_TOKEN' }, ca: { file: '/ca.crt' }, clientCert: { file: '/c.crt' }, clientKey: { file: '/c.key' } }), 'f.yaml');
  assert.deepEqual(ok.connections[0].upstream, { server: 'https://10.0.0.1:6443', token: { env: 'K8S_TOKEN' }, ca: { file: '/ca.crt' }, clientCert: { file: '/c.crt' }, clientKey: { file: '/c.key' } });
  const kc = validateConfig(conn({ kubeconfig: '~/.kube/config', context: 'prod' }), 'f.yaml');
  assert.deepEqual(kc.connections[0].upstream, { kubeconfig: '~/.kube/config', context: 'prod' });
  const bad: Array<[unknown, RegExp]> = [
    [{ token: { env: 'T' } }, /upstream\.server: expected the API server URL/],
    [{ server: 'https://x', token: 'inline' }, /upstream\.token: secrets are referenced/],
    [{ server: 'https://x', clientCert: { file: '/c' } }, /upstream\.clientKey: clientCert and clientKey go together/],
    [{ kubeconfig: '/k', server: 'https://x' }, /upstream\.server: server comes from the kubeconfig/],
    [{ server: 'https://x', context: 'c' }, /upstream\.context: context needs kubeconfig/],
    [{ server: 'https://x', ca: '/ca' }, /upstream\.ca: expected \{ file: PATH \}/],
    [{ server: 'ftp://x' }, /upstream\.server: expected an https URL/],
  ];
  for (const [u, re] of bad) assert.throws(() => validateConfig(conn(u), 'f.yaml'), re);
});

test('guardrails: match.kubernetes verb, resource spellings, namespace and name globs', () => {
  const set = compileGuardrails([
    { name: 'no-prod-deploy-delete', match: { kubernetes: { verb: ['delete'], resource: ['deployment'], namespace: ['prod*'] } }, action: 'deny', reason: 'prod needs a human' },
    { name: 'no-pf', match: { kubernetes: { verb: ['port-forward'] } }, action: 'deny' },
    { name: 'db-secret', match: { kubernetes: { resource: ['secrets'], name: ['db-*'] } }, action: 'hold' },
  ]);
  const input = (method: string, url: string) => {
    const r = parseKubeRequest(method, url);
    return { connection: 'k', protocol: 'kubernetes' as const, identity: 'a', kind: 'kubectl' as const, text: kubectlText(r), kubernetes: { verb: policyVerb(r), resource: r.resource, group: r.group, namespace: r.namespace, name: r.name } };
  };
  assert.equal(set.decide(input('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web')).rule, 'no-prod-deploy-delete');
  assert.equal(set.decide(input('DELETE', '/apis/apps/v1/namespaces/prod-eu/deployments')).rule, 'no-prod-deploy-delete');
  assert.equal(set.decide(input('DELETE', '/apis/apps/v1/namespaces/staging/deployments/web')).action, 'allow');
  assert.equal(set.decide(input('GET', '/apis/apps/v1/namespaces/prod/deployments/web')).action, 'allow');
  assert.equal(set.decide(input('POST', '/api/v1/namespaces/x/pods/p/portforward?ports=80')).rule, 'no-pf');
  assert.equal(set.decide(input('GET', '/api/v1/namespaces/x/secrets/db-main')).action, 'hold');
  assert.equal(set.decide(input('GET', '/api/v1/namespaces/x/secrets/web')).action, 'allow');
  const cfg = validateConfig({ guardrails: [{ name: 'r', match: { kubernetes: { verb: 'delete', name: 'web*' } }, action: 'deny' }] }, 'f.yaml');
  assert.deepEqual(cfg.guardrails[0].match.kubernetes, { verb: ['delete'], name: ['web*'] });
});

test('any method, path and query: a request description and one line of text, never a throw', () => {
  const part = fc.oneof(fc.constantFrom('api', 'apis', 'v1', 'namespaces', 'pods', 'exec', 'log', 'watch', 'scale', '', '%', '%zz', '..', 'secrets'), fc.string({ maxLength: 8 }));
  fc.assert(
    fc.property(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'BREW'), fc.array(part, { maxLength: 9 }), fc.string({ maxLength: 40 }), fc.string({ maxLength: 30 }), (m, parts, query, ct) => {
      const r = parseKubeRequest(m, `/${parts.join('/')}?${query}`, ct);
      const text = kubectlText(r, bodyFacts(null));
      assert.equal(typeof text, 'string');
      assert.ok(!text.includes('\n'));
      kubeTargets(r);
    }),
    { numRuns: 2000 },
  );
});

test('lineage: a model tool call `kubectl … delete deployment web` is matched by the recorded command', () => {
  const r = parseKubeRequest('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web');
  assert.equal(matchesCommand({ kind: 'kubectl', text: 'kubectl -n prod delete deployment web' }, kubectlText(r)), true);
  assert.equal(matchesCommand({ kind: 'kubectl', text: 'kubectl get pods' }, kubectlText(parseKubeRequest('GET', '/api/v1/namespaces/prod/pods'))), true);
  assert.equal(matchesCommand({ kind: 'kubectl', text: 'kubectl get pods' }, kubectlText(parseKubeRequest('GET', '/apis'))), false);
});
