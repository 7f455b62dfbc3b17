/**
 * core/v1 Events the way the scheduler, kubelet and controllers leave them, so `kubectl
 * describe` and `kubectl get events` show a pod's Scheduled/Pulled/Created/Started and a
 * deployment's ScalingReplicaSet like a real cluster.
 */
import { randomBytes } from 'node:crypto';
import type { KubeApi } from './api';
import { timestamp } from './defaults';
import { findResource, type KubeObject, type ResourceDef } from './resources';

const EVENT = findResource('', 'v1', 'events') as ResourceDef;

export function recordEvent(api: KubeApi, about: KubeObject, reason: string, message: string, component: string, type: 'Normal' | 'Warning' = 'Normal'): void {
  const now = timestamp();
  const namespace = about.metadata.namespace ?? 'default';
  const event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${about.metadata.name}.${randomBytes(8).toString('hex')}`, namespace },
    involvedObject: { kind: about.kind, namespace, name: about.metadata.name, uid: about.metadata.uid, apiVersion: about.apiVersion, resourceVersion: about.metadata.resourceVersion },
    reason,
    message,
    source: { component, ...(component === 'kubelet' ? { host: 'fixture-node' } : {}) },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    type,
    eventTime: null,
    reportingComponent: component,
    reportingInstance: component === 'kubelet' ? 'fixture-node' : '',
  } as unknown as KubeObject;
  if (!api.store.get('namespaces', '', namespace)) return;
  api.create(EVENT, namespace, event, new URLSearchParams(), component);
}
