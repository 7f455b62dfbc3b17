/**
 * The kinds the fixture serves, described once: discovery, OpenAPI, routing, defaulting and the
 * Table columns all read this catalog, so a kind added here shows up everywhere kubectl looks.
 */
export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
};

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  managedFields?: ManagedFieldsEntry[];
  [k: string]: unknown;
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

export interface Subresource {
  name: string;
  kind: { group: string; version: string; kind: string };
  verbs: string[];
}

export interface ResourceDef {
  group: string;
  version: string;
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  subresources: Subresource[];
  /** paths whose change bumps metadata.generation (spec-bearing kinds) */
  hasSpec: boolean;
  /** create-only review kinds answered on the spot and never stored (access reviews) */
  virtual?: boolean;
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function def(d: Partial<ResourceDef> & Pick<ResourceDef, 'group' | 'version' | 'resource' | 'singular' | 'kind'>): ResourceDef {
  return {
    listKind: `${d.kind}List`,
    namespaced: true,
    shortNames: [],
    categories: [],
    verbs: RW,
    subresources: [],
    hasSpec: false,
    ...d,
  };
}

const core = (kind: string) => ({ group: '', version: 'v1', kind });
const statusOf = (group: string, version: string, kind: string): Subresource => ({ name: 'status', kind: { group, version, kind }, verbs: ['get', 'patch', 'update'] });
const scale: Subresource = { name: 'scale', kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] };

export const RESOURCES: ResourceDef[] = [
  def({ group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], subresources: [statusOf('', 'v1', 'Namespace')] }),
  def({ group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', shortNames: ['po'], categories: ['all'], hasSpec: true,
    subresources: [
      statusOf('', 'v1', 'Pod'),
      { name: 'log', kind: core('Pod'), verbs: ['get'] },
      { name: 'exec', kind: core('PodExecOptions'), verbs: ['create', 'get'] },
      { name: 'attach', kind: core('PodAttachOptions'), verbs: ['create', 'get'] },
      { name: 'portforward', kind: core('PodPortForwardOptions'), verbs: ['create', 'get'] },
    ] }),
  def({ group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', shortNames: ['cm'] }),
  def({ group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret' }),
  def({ group: '', version: 'v1', resource: 'services', singular: 'service', kind: 'Service', shortNames: ['svc'], categories: ['all'], hasSpec: true,
    subresources: [statusOf('', 'v1', 'Service')] }),
  def({ group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', shortNames: ['ev'] }),
  def({ group: '', version: 'v1', resource: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', shortNames: ['sa'] }),
  def({ group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', kind: 'Deployment', shortNames: ['deploy'], categories: ['all'], hasSpec: true,
    subresources: [statusOf('apps', 'v1', 'Deployment'), scale] }),
  def({ group: 'apps', version: 'v1', resource: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet', shortNames: ['rs'], categories: ['all'], hasSpec: true,
    subresources: [statusOf('apps', 'v1', 'ReplicaSet'), scale] }),
  def({ group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'], virtual: true }),
  def({ group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectrulesreviews', singular: 'selfsubjectrulesreview', kind: 'SelfSubjectRulesReview', namespaced: false, verbs: ['create'], virtual: true }),
  def({ group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', singular: 'selfsubjectreview', kind: 'SelfSubjectReview', namespaced: false, verbs: ['create'], virtual: true }),
];

export const GROUPS: Array<{ group: string; version: string }> = [
  { group: '', version: 'v1' },
  { group: 'apps', version: 'v1' },
  { group: 'authorization.k8s.io', version: 'v1' },
  { group: 'authentication.k8s.io', version: 'v1' },
];

export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export function findResource(group: string, version: string, resource: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function resourcesOf(group: string, version: string): ResourceDef[] {
  return RESOURCES.filter((r) => r.group === group && r.version === version);
}

/** `pods` or `deployments.apps`: the store's key for a resource. */
export function resourceKey(r: ResourceDef): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}
