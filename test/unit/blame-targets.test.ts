/** What `flightlog blame` accepts as a target, and how globs and kubectl lines are read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { blame, formatBlameTarget, kubectlTouches, parseBlameTarget, pathGlob } from '../../gateway/store/blame';
import { tempRecorder } from '../helpers/recorder';

test('targets in every form the recorder knows, short table names resolved', () => {
  const canon = (t: string) => formatBlameTarget(parseBlameTarget(t));
  assert.equal(canon('orders'), 'table:public.orders');
  assert.equal(canon('Orders'), 'table:public.orders');
  assert.equal(canon('billing.invoices'), 'table:billing.invoices');
  assert.equal(canon('table:orders'), 'table:public.orders');
  assert.equal(canon('file:web-1:/etc/nginx/nginx.conf'), 'file:web-1:/etc/nginx/nginx.conf');
  assert.equal(canon('http:api:/v1/users/*'), 'http:api:/v1/users/*');
  assert.equal(canon('k8s:Deployment/prod/web'), 'k8s:deployment/prod/web');
  for (const bad of ['', 'file:web-1', 'file::/x', 'http:api:v1', 'k8s:deployment/web', 'a.b.c', 'ftp:x:/y']) {
    assert.throws(() => parseBlameTarget(bad), /target|table/, bad);
  }
});

test('path globs: * is one segment, ** any, the rest literal', () => {
  assert.ok(pathGlob('/v1/users/*').test('/v1/users/42'));
  assert.ok(!pathGlob('/v1/users/*').test('/v1/users/42/keys'));
  assert.ok(pathGlob('/v1/users/**').test('/v1/users/42/keys'));
  assert.ok(!pathGlob('/v1/users.json').test('/v1/usersXjson'));
});

test('kubectl lines name an object by kind/name or kind name, in its namespace', () => {
  const t = (line: string) => kubectlTouches(line, 'deployment', 'deployments', 'prod', 'web');
  assert.equal(t('kubectl -n prod rollout restart deployment/web'), 'rollout');
  assert.equal(t('kubectl scale deploy web --replicas=3 --namespace=prod'), 'scale');
  assert.equal(t('kubectl get deployments.apps web -n prod -o yaml'), 'get');
  assert.equal(t('kubectl -n staging scale deployment/web --replicas=0'), null, 'another namespace');
  assert.equal(t('kubectl -n prod scale deployment/web-2 --replicas=0'), null, 'another object');
  assert.equal(t('echo deployment/web'), null);
});

test('a k8s target finds kubectl writes and reads and API requests on the object', async () => {
  const { dir, db, rec } = tempRecorder('flightlog-blame-k8s-');
  try {
    const ssh = rec.openSession({ connection: 'bastion', protocol: 'ssh', identity: 'claude', runId: 'run_k' });
    ssh.startCommand({ kind: 'exec', text: 'kubectl -n prod get deployment web' }).finish({ status: 'ok' });
    ssh.startCommand({ kind: 'exec', text: 'kubectl -n prod set image deployment/web web=web:2' }).finish({ status: 'ok' });
    const api = rec.openSession({ connection: 'k8s-api', protocol: 'http', identity: 'claude', runId: 'run_k' });
    api.startCommand({ kind: 'http', text: 'PATCH /apis/apps/v1/namespaces/prod/deployments/web', classification: 'write', detail: { method: 'PATCH', url: '/apis/apps/v1/namespaces/prod/deployments/web?fieldManager=x' } }).finish({ status: 'ok' });
    api.startCommand({ kind: 'http', text: 'GET /apis/apps/v1/namespaces/prod/deployments/web-2', classification: 'read', detail: { method: 'GET', url: '/apis/apps/v1/namespaces/prod/deployments/web-2' } }).finish({ status: 'ok' });
    await rec.flush();
    const r = blame(db, 'k8s:deployment/prod/web', { since: '2000-01-01T00:00:00Z' });
    assert.deepEqual(r.entries.map((e) => [e.access, e.text.split(' ').slice(0, 3).join(' '), e.firstWriteSince]), [
      ['read', 'kubectl -n prod', false],
      ['write', 'kubectl -n prod', true],
      ['write', 'PATCH /apis/apps/v1/namespaces/prod/deployments/web', false],
    ]);
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
