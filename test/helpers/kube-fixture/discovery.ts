/**
 * API discovery and OpenAPI, generated from the catalog in resources.ts:
 * - `/version`;
 * - aggregated discovery (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList at `/api` and `/apis`,
 *   served when the client's Accept names it, as kubectl 1.32 does) and the legacy documents
 *   (APIVersions, APIGroupList, APIGroup, APIResourceList) otherwise;
 * - `/openapi/v3` (root and one document per group-version). kubectl reads it to learn that the
 *   server validates fields itself (the `fieldValidation` parameter of each PATCH operation, with
 *   the `x-kubernetes-group-version-kind` of the kind). The PATCH request bodies do not offer
 *   strategic merge in the document, as the fixture serves no full schemas, so kubectl builds
 *   strategic patches from its compiled-in types, which is what it does for these kinds anyway.
 * `/openapi/v2` answers 404, which kubectl treats as "no v2 schema".
 */
import { createHash } from 'node:crypto';
import { GROUPS, groupVersion, resourcesOf, type ResourceDef } from './resources';

export const AGGREGATED_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
export const AGGREGATED_V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

export const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-flightlog-fixture',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function discoveryResource(r: ResourceDef) {
  return {
    resource: r.resource,
    responseKind: { group: r.group, version: r.version, kind: r.kind },
    scope: r.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: r.singular,
    verbs: r.verbs,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length ? { categories: r.categories } : {}),
    ...(r.subresources.length ? { subresources: r.subresources.map((s) => ({ subresource: s.name, responseKind: s.kind, verbs: s.verbs })) } : {}),
  };
}

/** The APIGroupDiscoveryList for `/api` (core) or `/apis` (named groups). */
export function aggregated(core: boolean, apiVersion: 'v2' | 'v2beta1') {
  const groups = [...new Set(GROUPS.filter((g) => (g.group === '') === core).map((g) => g.group))];
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${apiVersion}`,
    metadata: {},
    items: groups.map((group) => ({
      metadata: group ? { name: group } : {},
      versions: GROUPS.filter((g) => g.group === group).map((g) => ({
        version: g.version,
        resources: resourcesOf(g.group, g.version).map(discoveryResource),
        freshness: 'Current',
      })),
    })),
  };
}

export function apiVersions(serverAddress: string) {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function apiGroup(group: string) {
  const versions = GROUPS.filter((g) => g.group === group).map((g) => ({ groupVersion: groupVersion(g.group, g.version), version: g.version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList() {
  const named = [...new Set(GROUPS.filter((g) => g.group).map((g) => g.group))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: named.map(apiGroup) };
}

export function apiGroupDoc(group: string) {
  return GROUPS.some((g) => g.group === group) ? { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group) } : undefined;
}

export function apiResourceList(group: string, version: string) {
  const rs = resourcesOf(group, version);
  if (!rs.length) return undefined;
  const resources: unknown[] = [];
  for (const r of rs) {
    resources.push({
      name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length ? { categories: r.categories } : {}),
      storageVersionHash: createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11),
    });
    for (const s of r.subresources) {
      resources.push({ name: `${r.resource}/${s.name}`, singularName: '', namespaced: r.namespaced, group: s.kind.group || undefined, version: s.kind.version, kind: s.kind.kind, verbs: s.verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources };
}

// ---- OpenAPI v3 -------------------------------------------------------------------------------

const q = (name: string, description: string, type = 'string') => ({ name, in: 'query', description, schema: { type, uniqueItems: true } });
const WRITE_PARAMS = [
  q('dryRun', 'When present, indicates that modifications should not be persisted.'),
  q('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  q('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.'),
];

function gvkExt(r: ResourceDef) {
  return { 'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind } };
}

function schemaName(r: ResourceDef): string {
  return `io.k8s.api.${r.group || 'core'}.${r.version}.${r.kind}`;
}

function openapiDoc(group: string, version: string) {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  for (const r of resourcesOf(group, version)) {
    const ref = { $ref: `#/components/schemas/${schemaName(r)}` };
    const body = (types: string[]) => ({ content: Object.fromEntries(types.map((t) => [t, { schema: ref }])), required: true });
    const ok = { 200: { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const op = (action: string, extra: Record<string, unknown> = {}) => ({
      description: `${action} ${r.kind}`, operationId: `${action}${r.kind}`, responses: ok, 'x-kubernetes-action': action, ...gvkExt(r), ...extra,
    });
    const collection = r.namespaced ? `${prefix}/namespaces/{namespace}/${r.resource}` : `${prefix}/${r.resource}`;
    paths[collection] = {
      get: op('list'),
      post: op('post', { requestBody: body(['*/*']), parameters: WRITE_PARAMS }),
      delete: op('deletecollection'),
    };
    paths[`${collection}/{name}`] = {
      get: op('get'),
      put: op('put', { requestBody: body(['*/*']), parameters: WRITE_PARAMS }),
      patch: op('patch', {
        requestBody: body(['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']),
        parameters: [...WRITE_PARAMS, q('force', 'Force is going to "force" Apply requests.', 'boolean')],
      }),
      delete: op('delete', { parameters: [q('dryRun', 'dry run'), q('propagationPolicy', 'propagation policy')] }),
    };
    schemas[schemaName(r)] = {
      type: 'object',
      description: `${r.kind} (fixture schema: only the envelope is described).`,
      properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' } },
      'x-kubernetes-group-version-kind': [{ group: r.group, version: r.version, kind: r.kind }],
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: VERSION.gitVersion }, paths, components: { schemas } };
}

const docs = new Map<string, { body: string; hash: string }>();

/** `/openapi/v3/<api/v1 | apis/apps/v1>` or undefined. */
export function openapiV3(gvPath: string): { body: string; hash: string } | undefined {
  const cached = docs.get(gvPath);
  if (cached) return cached;
  const m = /^(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(gvPath);
  if (!m) return undefined;
  const group = m[1] ? '' : m[2];
  const version = m[1] ?? m[3];
  if (!resourcesOf(group, version).length) return undefined;
  const body = JSON.stringify(openapiDoc(group, version));
  const doc = { body, hash: createHash('sha512').update(body).digest('hex').toUpperCase().slice(0, 128) };
  docs.set(gvPath, doc);
  return doc;
}

export function openapiV3Root() {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of GROUPS) {
    const p = g.group ? `apis/${g.group}/${g.version}` : `api/${g.version}`;
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${openapiV3(p)?.hash}` };
  }
  return { paths };
}

