/**
 * What the API server fills in on create (defaulting) and what a kubelet would report: pods are
 * Running and Ready at once on the fixture's one node, so exec, logs and port-forward can start.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { KubeObject, ResourceDef } from './resources';
import { isObject, type JsonObject } from './patch';
import { invalid, fail } from './status';

export const NODE_NAME = 'fixture-node';

export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

let podIp = 1;

function defaultContainers(list: unknown): void {
  if (!Array.isArray(list)) return;
  for (const c of list as JsonObject[]) {
    const image = String(c.image ?? '');
    c.imagePullPolicy ??= image.endsWith(':latest') || !image.includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    if (Array.isArray(c.ports)) for (const p of c.ports as JsonObject[]) p.protocol ??= 'TCP';
  }
}

function defaultPodSpec(spec: JsonObject): void {
  defaultContainers(spec.containers);
  defaultContainers(spec.initContainers);
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
}

export function defaultObject(r: ResourceDef, obj: KubeObject): void {
  const o = obj as unknown as JsonObject;
  switch (r.kind) {
    case 'Namespace':
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name ?? '' };
      o.spec = { finalizers: ['kubernetes'], ...(isObject(o.spec) ? o.spec : {}) };
      o.status = { phase: 'Active' };
      break;
    case 'Pod': {
      const spec = isObject(o.spec) ? o.spec : (o.spec = {});
      defaultPodSpec(spec);
      spec.nodeName ??= NODE_NAME;
      spec.serviceAccountName ??= 'default';
      break;
    }
    case 'Secret':
      o.type ??= 'Opaque';
      if (isObject(o.stringData)) {
        const data = isObject(o.data) ? o.data : (o.data = {});
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        delete o.stringData;
      }
      break;
    case 'Service': {
      const spec = isObject(o.spec) ? o.spec : (o.spec = {});
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      if (spec.clusterIP === undefined) {
        spec.clusterIP = `10.96.${randomBytes(1)[0]}.${1 + (randomBytes(1)[0] % 250)}`;
        spec.clusterIPs = [spec.clusterIP];
      }
      if (Array.isArray(spec.ports)) for (const p of spec.ports as JsonObject[]) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port ?? null;
      }
      o.status ??= { loadBalancer: {} };
      break;
    }
    case 'Deployment':
    case 'ReplicaSet': {
      const spec = isObject(o.spec) ? o.spec : (o.spec = {});
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      if (r.kind === 'Deployment') {
        spec.progressDeadlineSeconds ??= 600;
        const strategy = isObject(spec.strategy) ? spec.strategy : (spec.strategy = {});
        strategy.type ??= 'RollingUpdate';
        if (strategy.type === 'RollingUpdate') strategy.rollingUpdate = { maxUnavailable: '25%', maxSurge: '25%', ...(isObject(strategy.rollingUpdate) ? strategy.rollingUpdate : {}) };
      }
      const tpl = isObject(spec.template) ? spec.template : (spec.template = {});
      tpl.metadata ??= {};
      if (isObject(tpl.spec)) defaultPodSpec(tpl.spec);
      o.status ??= {};
      break;
    }
  }
}

/** The pod's status as a kubelet on a healthy node would report it. */
export function runningPodStatus(pod: KubeObject, startedAt: string): JsonObject {
  const spec = (pod as unknown as JsonObject).spec as JsonObject;
  const containers = (Array.isArray(spec?.containers) ? spec.containers : []) as JsonObject[];
  const ip = `10.244.${(podIp >> 8) & 255}.${podIp & 255}`;
  podIp = (podIp + 1) % 65000 || 1;
  const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: startedAt });
  return {
    phase: 'Running',
    conditions: [cond('PodReadyToStartContainers'), cond('Initialized'), cond('Ready'), cond('ContainersReady'), cond('PodScheduled')],
    hostIP: '10.0.0.10',
    hostIPs: [{ ip: '10.0.0.10' }],
    podIP: ip,
    podIPs: [{ ip }],
    startTime: startedAt,
    qosClass: 'BestEffort',
    containerStatuses: containers.map((c) => ({
      name: c.name ?? null,
      state: { running: { startedAt } },
      lastState: {},
      ready: true,
      restartCount: 0,
      image: c.image ?? null,
      imageID: `docker.io/library/${String(c.image ?? 'unknown')}@sha256:${'0'.repeat(64)}`,
      containerID: `containerd://${randomBytes(32).toString('hex')}`,
      started: true,
    })),
  };
}

/** Validation the API server would do, enough that bad input gets 422 Invalid rather than a store of junk. */
export function validate(r: ResourceDef, obj: KubeObject): void {
  const name = obj.metadata.name ?? '';
  if (!name) fail(422, `${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, { details: { kind: r.resource, causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }] } });
  if (!DNS1123.test(name) || name.length > 253) {
    invalid(r.kind, r.group, name, [{ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` }]);
  }
  const o = obj as unknown as JsonObject;
  if (r.kind === 'Pod') {
    const cs = (o.spec as JsonObject | undefined)?.containers;
    if (!Array.isArray(cs) || cs.length === 0) invalid(r.kind, r.group, name, [{ field: 'spec.containers', message: 'Required value' }]);
  }
  if (r.kind === 'Deployment' || r.kind === 'ReplicaSet') {
    const spec = o.spec as JsonObject;
    const sel = isObject(spec.selector) ? (spec.selector.matchLabels as JsonObject | undefined) : undefined;
    const labels = ((spec.template as JsonObject)?.metadata as JsonObject | undefined)?.labels as JsonObject | undefined;
    if (!sel || Object.keys(sel).length === 0) invalid(r.kind, r.group, name, [{ field: 'spec.selector', message: 'Required value' }]);
    if (!Object.entries(sel).every(([k, v]) => labels?.[k] === v)) {
      invalid(r.kind, r.group, name, [{ field: 'spec.template.metadata.labels', message: `Invalid value: ${JSON.stringify(labels ?? {})}: \`selector\` does not match template \`labels\`` }]);
    }
    if (typeof spec.replicas === 'number' && spec.replicas < 0) invalid(r.kind, r.group, name, [{ field: 'spec.replicas', message: `Invalid value: ${spec.replicas}: must be greater than or equal to 0` }]);
  }
  if (r.kind === 'ConfigMap' || r.kind === 'Secret') {
    for (const k of Object.keys(isObject(o.data) ? o.data : {})) {
      if (!/^[-._a-zA-Z0-9]+$/.test(k)) invalid(r.kind, r.group, name, [{ field: `data[${k}]`, message: `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'` }]);
    }
  }
}

export function newMeta(obj: KubeObject, namespace: string | undefined): void {
  if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomBytes(3).toString('hex').slice(0, 5);
  if (namespace !== undefined) obj.metadata.namespace = namespace;
  obj.metadata.uid = randomUUID();
  obj.metadata.creationTimestamp = timestamp();
}
