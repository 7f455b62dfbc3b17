/**
 * A tiny stand-in for the deployment and replicaset controllers: shortly after a Deployment
 * changes, it makes the ReplicaSet of the current pod template (named by `pod-template-hash`),
 * rolls pods over to it one at a time while scaling older ones down, creates or deletes pods to
 * match, and reports status the way `kubectl rollout status` reads it (observedGeneration,
 * replicas, updated/ready/available, Available and Progressing conditions, the
 * `deployment.kubernetes.io/revision` annotation).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KubeApi } from './api';
import { findResource, resourceKey, type KubeObject, type ResourceDef } from './resources';
import { clone, type JsonObject } from './patch';
import { selectorFromSpec } from './selectors';
import { timestamp } from './defaults';
import { recordEvent } from './events';

const DEPLOY = findResource('apps', 'v1', 'deployments') as ResourceDef;
const RS = findResource('apps', 'v1', 'replicasets') as ResourceDef;
const POD = findResource('', 'v1', 'pods') as ResourceDef;
const CONTROLLER = 'kube-controller-manager';
const STEP_MS = 150;
const q = () => new URLSearchParams({ fieldManager: CONTROLLER });

function ownerRef(o: KubeObject): JsonObject {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name ?? '', uid: o.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}

/** JSON with sorted keys and no nulls: equal templates hash equal however they were written (rollout undo). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== null && x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const replicasOf = (o: KubeObject) => Number((o as unknown as { spec?: { replicas?: number } }).spec?.replicas ?? 0);
const revisionOf = (o: KubeObject) => Number(o.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
const ownedBy = (o: KubeObject, owner: KubeObject) => ((o.metadata.ownerReferences as Array<{ uid: string }> | undefined) ?? []).some((r) => r.uid === owner.metadata.uid);

export class DeploymentController {
  private pending = new Map<string, NodeJS.Timeout>();

  constructor(private readonly api: KubeApi) {}

  changed(def: ResourceDef, obj: KubeObject): void {
    if (def !== DEPLOY) return;
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    if (this.pending.has(key)) return;
    // Asynchronous like the real controller, so a watcher sees the spec change, then the status;
    // rollout steps are slower than kubectl's start, so `rollout status` can watch them.
    const rolling = obj.metadata.generation === (obj as unknown as { status?: { observedGeneration?: number } }).status?.observedGeneration;
    this.pending.set(key, setTimeout(() => {
      this.pending.delete(key);
      this.reconcile(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    }, rolling ? STEP_MS : 20));
  }

  close(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private reconcile(namespace: string, name: string): void {
    const d = this.api.get(DEPLOY, namespace, name);
    if (!d) return;
    const spec = (d as unknown as { spec: JsonObject }).spec;
    const replicas = Number(spec.replicas ?? 1);
    const template = clone(spec.template as JsonObject);
    const hash = createHash('sha256').update(canonical(template)).digest('hex').slice(0, 10).replace(/[0-9]/g, (c) => 'bcdfghjklm'[Number(c)]);
    const rsName = `${name}-${hash}`;
    const owned = this.api.store.list(resourceKey(RS), namespace).filter((r) => ownedBy(r, d));
    let revision = Math.max(0, ...owned.map((r) => Number(r.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)));
    let current = owned.find((r) => r.metadata.name === rsName);
    const labels = { ...(((template.metadata as JsonObject)?.labels as Record<string, string>) ?? {}), 'pod-template-hash': hash };
    if (!current) {
      revision++;
      const rs = {
        apiVersion: 'apps/v1', kind: 'ReplicaSet',
        metadata: { name: rsName, namespace, labels, annotations: { 'deployment.kubernetes.io/revision': String(revision) }, ownerReferences: [ownerRef(d)] },
        spec: {
          replicas: 0,
          selector: { matchLabels: { ...((spec.selector as { matchLabels?: Record<string, string> })?.matchLabels ?? {}), 'pod-template-hash': hash } },
          template: { ...template, metadata: { ...((template.metadata as JsonObject) ?? {}), labels } },
        },
      } as unknown as KubeObject;
      current = this.api.create(RS, namespace, rs, q(), CONTROLLER);
    } else {
      revision = Number(current.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? revision);
    }
    // A rolling update one pod at a time: each step's status change wakes the controller for
    // the next (changed() above), so `rollout status` and watchers see the rollout progress.
    const old = owned.filter((r) => r.metadata.name !== rsName).sort((a, b) => revisionOf(b) - revisionOf(a));
    const have = replicasOf(current);
    const updated = have < replicas ? have + 1 : replicas;
    let oldAllowed = Math.max(0, replicas - updated);
    this.scaleRs(current, updated);
    let oldTotal = 0;
    for (const r of old) {
      const keep = Math.min(replicasOf(r), oldAllowed);
      oldAllowed -= keep;
      oldTotal += keep;
      this.scaleRs(r, keep);
    }
    const done = updated === replicas && oldTotal === 0;
    const now = timestamp();
    const next = clone(d);
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': String(revision) };
    this.api.commit(DEPLOY, d, next, q(), CONTROLLER);
    const fresh = this.api.get(DEPLOY, namespace, name) as KubeObject;
    const prior = ((fresh as unknown as { status?: { conditions?: JsonObject[] } }).status?.conditions ?? []);
    const since = (type: string, status: string) => {
      const c = prior.find((x) => x.type === type);
      return c && c.status === status ? (c.lastTransitionTime as string) : now;
    };
    const total = updated + oldTotal;
    const status: JsonObject = {
      observedGeneration: fresh.metadata.generation ?? 1,
      replicas: total, updatedReplicas: updated, readyReplicas: total, availableReplicas: total,
      conditions: [
        { type: 'Available', status: 'True', lastUpdateTime: now, lastTransitionTime: since('Available', 'True'), reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' },
        done
          ? { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: since('Progressing', 'True'), reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${rsName}" has successfully progressed.` }
          : { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: since('Progressing', 'True'), reason: 'ReplicaSetUpdated', message: `ReplicaSet "${rsName}" is progressing.` },
      ],
    };
    if (total === 0) {
      delete status.readyReplicas;
      delete status.availableReplicas;
    }
    const withStatus = { ...clone(fresh), status } as KubeObject;
    this.api.commit(DEPLOY, fresh, withStatus, q(), CONTROLLER, 'status');
  }

  /** Sets a ReplicaSet's replicas, creates or deletes its pods to match, and reports its status. */
  private scaleRs(rs: KubeObject, replicas: number): void {
    const namespace = rs.metadata.namespace ?? '';
    let cur = rs;
    const was = replicasOf(rs);
    if (was !== replicas) {
      const owner = this.api.get(DEPLOY, namespace, ((rs.metadata.ownerReferences as Array<{ name: string }> | undefined) ?? [])[0]?.name ?? '');
      if (owner) recordEvent(this.api, owner, 'ScalingReplicaSet', `Scaled ${replicas > was ? 'up' : 'down'} replica set ${rs.metadata.name} from ${was} to ${replicas}`, 'deployment-controller');
      const next = clone(rs);
      (next as unknown as { spec: JsonObject }).spec.replicas = replicas;
      cur = this.api.commit(RS, rs, next, q(), CONTROLLER);
    }
    const match = selectorFromSpec((cur as unknown as { spec: JsonObject }).spec.selector);
    const pods = this.api.store.list(resourceKey(POD), namespace).filter((p) => ownedBy(p, cur) && match(p));
    for (const p of pods.slice(replicas)) this.api.removeCascading(POD, p, 'Background');
    const tpl = (cur as unknown as { spec: { template: JsonObject } }).spec.template;
    for (let i = pods.length; i < replicas; i++) {
      const pod = {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { ...clone((tpl.metadata as JsonObject) ?? {}), name: `${cur.metadata.name}-${randomBytes(4).toString('hex').slice(0, 5)}`, namespace, ownerReferences: [ownerRef(cur)] },
        spec: clone(tpl.spec as JsonObject),
      } as unknown as KubeObject;
      this.api.create(POD, namespace, pod, q(), CONTROLLER);
    }
    const status = { replicas, fullyLabeledReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas, observedGeneration: cur.metadata.generation };
    const fresh = this.api.get(RS, namespace, cur.metadata.name ?? '') as KubeObject;
    this.api.commit(RS, fresh, { ...clone(fresh), status } as KubeObject, q(), CONTROLLER, 'status');
  }
}
