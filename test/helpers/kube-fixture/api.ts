/**
 * The REST half of the fixture: routing `/api/v1/...` and `/apis/<group>/<version>/...` to the
 * catalog, and get, list (label/field selectors, `limit`/`continue`), watch, create, update
 * (409 on a stale resourceVersion), patch (JSON, merge, strategic merge, server-side apply),
 * delete (with preconditions and propagation), deletecollection, `dryRun=All`, and the status
 * and scale subresources, answering JSON objects, Tables or PartialObjectMetadata as asked.
 */
import type * as http from 'node:http';
import * as zlib from 'node:zlib';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { findResource, groupVersion, resourceKey, RESOURCES, type KubeObject, type ResourceDef } from './resources';
import { ObjectStore, type StoreEvent } from './store';
import { alreadyExists, conflict, fail, failure, notFound, StatusError, success, type KubeStatus } from './status';
import { applyJsonPatch, applyMergePatch, applyStrategicMerge, clone, isObject, type Json, type JsonObject } from './patch';
import { recordUpdate, serverSideApply } from './managed-fields';
import { defaultObject, newMeta, runningPodStatus, timestamp, validate } from './defaults';
import { fieldMatcher, labelMatcher, selectorString, type Matcher } from './selectors';
import { partialMetadata, tableOf } from './table';
import { decodeKubeProtobuf } from './protobuf';
import { checkFields } from './field-validation';

export interface Route {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** `/api/v1/namespaces/ns/pods/web/exec` → pods, ns, web, exec; undefined when no kind matches. */
export function parseRoute(pathname: string): Route | undefined {
  const segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) [group, version, rest] = ['', segs[1], segs.slice(2)];
  else if (segs[0] === 'apis' && segs.length >= 4) [group, version, rest] = [segs[1], segs[2], segs.slice(3)];
  else return undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const def = findResource(group, version, rest[2]);
    if (def?.namespaced) return rest.length <= 5 ? { def, namespace: rest[1], name: rest[3], subresource: rest[4] } : undefined;
  }
  const def = findResource(group, version, rest[0]);
  if (!def || rest.length > 3) return undefined;
  return { def, name: rest[1], subresource: rest[2] };
}

type Query = URLSearchParams;

export interface Hooks {
  /** after a committed (not dry-run) write of a kind; `created` on the first */
  changed(def: ResourceDef, obj: KubeObject, created: boolean): void;
}

export class KubeApi {
  readonly store = new ObjectStore();
  hooks: Hooks = { changed: () => undefined };

  get(def: ResourceDef, namespace: string, name: string): KubeObject | undefined {
    return this.store.get(resourceKey(def), def.namespaced ? namespace : '', name);
  }

  mustGet(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    return this.get(def, namespace ?? '', name) ?? notFound(def.resource, def.group, name);
  }

  private requireNamespace(def: ResourceDef, namespace: string | undefined): void {
    if (!def.namespaced || namespace === undefined) return;
    if (!this.store.get('namespaces', '', namespace)) notFound('namespaces', '', namespace);
  }

  // ---- reads ----

  list(def: ResourceDef, namespace: string | undefined, q: Query): JsonObject {
    const match = matcher(q);
    const all = this.store.list(resourceKey(def), def.namespaced ? namespace : undefined).filter(match);
    const rv = String(this.store.currentRv());
    const limit = Number(q.get('limit') ?? 0);
    let start = 0;
    const cont = q.get('continue');
    if (cont) {
      let after: string;
      try {
        after = (JSON.parse(Buffer.from(cont, 'base64url').toString()) as { start: string }).start;
      } catch {
        return fail(400, 'continue key is not valid: illegal base64 data');
      }
      start = all.findIndex((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > after);
      if (start < 0) start = all.length;
    }
    const items = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const metadata: JsonObject = { resourceVersion: rv };
    const left = all.length - start - items.length;
    if (limit > 0 && left > 0) {
      const last = items[items.length - 1];
      metadata.continue = Buffer.from(JSON.stringify({ rv, start: `${last.metadata.namespace ?? ''}/${last.metadata.name}` })).toString('base64url');
      metadata.remainingItemCount = left;
    }
    return { kind: def.listKind, apiVersion: groupVersion(def.group, def.version), metadata, items: items as unknown as Json[] };
  }

  /**
   * A change-event subscription filtered to one resource, namespace and selectors. With a
   * selector, an object that starts matching arrives as ADDED and one that stops as DELETED,
   * as the API documents for filtered watches.
   */
  watch(def: ResourceDef, namespace: string | undefined, q: Query, since: number, onEvent: (e: StoreEvent) => void): () => void {
    const match = matcher(q);
    const key = resourceKey(def);
    return this.store.subscribe(since, (e) => {
      if (e.key !== key) return;
      if (def.namespaced && namespace !== undefined && e.object.metadata.namespace !== namespace) return;
      const now = match(e.object);
      if (e.type !== 'MODIFIED' || !e.previous) {
        if (now) onEvent(e);
        return;
      }
      const before = match(e.previous);
      if (now && before) onEvent(e);
      else if (now) onEvent({ ...e, type: 'ADDED' });
      else if (before) onEvent({ ...e, type: 'DELETED' });
    });
  }

  // ---- writes ----

  create(def: ResourceDef, namespace: string | undefined, body: unknown, q: Query, userAgent: string): KubeObject {
    const obj = asObject(body, def);
    if (def.namespaced && obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace) {
      fail(400, 'the namespace of the provided object does not match the namespace sent on the request');
    }
    this.requireNamespace(def, namespace);
    newMeta(obj, def.namespaced ? namespace ?? 'default' : undefined);
    delete obj.metadata.resourceVersion;
    if (obj.metadata.name && this.get(def, namespace ?? '', obj.metadata.name)) alreadyExists(def.resource, def.group, obj.metadata.name);
    return this.commit(def, null, obj, q, userAgent);
  }

  update(route: Route, body: unknown, q: Query, userAgent: string): KubeObject {
    const { def, namespace, name = '', subresource } = route;
    const before = this.mustGet(def, namespace, name);
    if (subresource === 'scale') return this.writeScale(route, before, asScale(body), q, userAgent);
    const obj = asObject(body, def);
    if (obj.metadata.name && obj.metadata.name !== name) fail(400, `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== before.metadata.resourceVersion) conflict(def.resource, def.group, name);
    return this.commit(def, before, obj, q, userAgent, subresource);
  }

  patch(route: Route, contentType: string, raw: Buffer, q: Query, userAgent: string): KubeObject {
    const { def, namespace, name = '', subresource } = route;
    const type = contentType.split(';')[0].trim();
    let patchBody: unknown;
    try {
      patchBody = type === 'application/apply-patch+yaml' ? parseYaml(raw.toString('utf8')) : JSON.parse(raw.toString('utf8'));
    } catch (e) {
      return fail(400, `error decoding patch: ${(e as Error).message.split('\n')[0]}`);
    }
    const before = this.get(def, namespace ?? '', name);
    if (type === 'application/apply-patch+yaml') {
      const manager = q.get('fieldManager');
      if (!manager) fail(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
      if (subresource === 'scale') fail(415, 'apply patches to the scale subresource are not supported by the fixture');
      const applied = asObject(patchBody, def);
      if (applied.metadata.name && applied.metadata.name !== name) fail(400, `the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`);
      applied.metadata.name = name;
      if (def.namespaced) {
        if (applied.metadata.namespace && applied.metadata.namespace !== namespace) fail(400, 'the namespace of the provided object does not match the namespace sent on the request');
        applied.metadata.namespace = namespace;
      }
      if (!before) this.requireNamespace(def, namespace);
      const merged = serverSideApply(before ?? null, applied, manager as string, q.get('force') === 'true', groupVersion(def.group, def.version), def.resource);
      if (!before) newMeta(merged, def.namespaced ? namespace : undefined);
      return this.commit(def, before ?? null, merged, q, userAgent, subresource, true);
    }
    if (!before) notFound(def.resource, def.group, name);
    const current: Json = subresource === 'scale' ? (scaleOf(def, before) as unknown as Json) : (clone(before) as unknown as Json);
    let patched: Json;
    switch (type) {
      case 'application/json-patch+json': patched = applyJsonPatch(current, patchBody); break;
      case 'application/merge-patch+json': patched = applyMergePatch(current, patchBody as Json); break;
      case 'application/strategic-merge-patch+json': patched = applyStrategicMerge(current, patchBody as Json); break;
      default: return fail(415, `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    }
    if (!isObject(patched) || !isObject(patched.metadata)) fail(422, 'the patch produced an object without metadata');
    const p = patched as unknown as KubeObject;
    if (p.metadata.resourceVersion && p.metadata.resourceVersion !== before.metadata.resourceVersion && subresource !== 'scale') conflict(def.resource, def.group, name);
    if (p.metadata.name !== name) fail(400, `metadata.name: Invalid value: "${String(p.metadata.name)}": field is immutable`);
    if (subresource === 'scale') return this.writeScale(route, before, p, q, userAgent);
    return this.commit(def, before, p, q, userAgent, subresource);
  }

  private writeScale(route: Route, before: KubeObject, scale: KubeObject, q: Query, userAgent: string): KubeObject {
    const { def } = route;
    const rv = scale.metadata.resourceVersion;
    if (rv && rv !== before.metadata.resourceVersion) conflict(def.resource, def.group, before.metadata.name ?? '');
    const replicas = (scale as unknown as { spec?: { replicas?: unknown } }).spec?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      fail(422, `Scale.autoscaling "${before.metadata.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
    }
    const next = clone(before) as unknown as JsonObject;
    (next.spec as JsonObject).replicas = replicas;
    const saved = this.commit(def, before, next as unknown as KubeObject, q, userAgent, 'scale');
    return scaleOf(def, saved);
  }

  /**
   * The one write path: immutable metadata kept, status or spec kept depending on the
   * subresource, generation bumped on spec changes, defaults, validation, managedFields, then
   * stored (or, with dryRun=All, only returned). A write that changes nothing keeps its resourceVersion.
   */
  commit(def: ResourceDef, before: KubeObject | null, obj: KubeObject, q: Query, userAgent: string, subresource?: string, applied = false): KubeObject {
    const hasStatus = def.subresources.some((s) => s.name === 'status');
    const o = obj as unknown as JsonObject;
    if (before) {
      for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'generation', 'deletionTimestamp'] as const) {
        if (before.metadata[k] === undefined) delete obj.metadata[k];
        else obj.metadata[k] = before.metadata[k] as never;
      }
      const b = before as unknown as JsonObject;
      if (subresource === 'status') {
        for (const k of Object.keys(o)) if (k !== 'status' && k !== 'metadata') delete o[k];
        for (const [k, v] of Object.entries(b)) if (k !== 'status' && k !== 'metadata') o[k] = clone(v);
        obj.metadata = { ...clone(before.metadata), managedFields: obj.metadata.managedFields };
      } else if (hasStatus) {
        if (b.status === undefined) delete o.status;
        else o.status = clone(b.status);
      }
    } else if (hasStatus) {
      // A client does not set status on create: the controllers and kubelet do.
      delete o.status;
    }
    obj.apiVersion = groupVersion(def.group, def.version);
    obj.kind = def.kind;
    defaultObject(def, obj);
    if (!before && def.kind === 'Pod') o.status = runningPodStatus(obj, obj.metadata.creationTimestamp ?? timestamp());
    // Only requests that ask for it (kubectl does by default); the fixture's own writes do not.
    checkFields(def, obj, q.get('fieldValidation'));
    validate(def, obj);
    if (def.hasSpec) {
      const specOf = (x: KubeObject) => JSON.stringify(Object.entries(x).filter(([k]) => k !== 'metadata' && k !== 'status'));
      obj.metadata.generation = before ? (before.metadata.generation ?? 1) + (specOf(before) !== specOf(obj) ? 1 : 0) : 1;
    }
    if (!applied) recordUpdate(before, obj, q.get('fieldManager') || defaultManager(userAgent), groupVersion(def.group, def.version), subresource === 'scale' ? 'scale' : subresource);
    if (before) {
      const same = (x: KubeObject) => JSON.stringify({ ...x, metadata: { ...x.metadata, managedFields: undefined, resourceVersion: undefined } });
      if (same(before) === same(obj)) return before;
    }
    if (q.getAll('dryRun').includes('All')) {
      obj.metadata.resourceVersion = before?.metadata.resourceVersion;
      return obj;
    }
    const saved = this.store.put(resourceKey(def), obj, before ? 'MODIFIED' : 'ADDED');
    this.hooks.changed(def, saved, !before);
    return saved;
  }

  delete(route: Route, body: unknown, q: Query): KubeStatus | KubeObject {
    const { def, namespace, name = '' } = route;
    const obj = this.mustGet(def, namespace, name);
    const opts = isObject(body as Json) ? (body as { preconditions?: { uid?: string; resourceVersion?: string }; propagationPolicy?: string; dryRun?: string[] }) : {};
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== obj.metadata.uid) conflict(def.resource, def.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${obj.metadata.uid}`);
    if (pre?.resourceVersion && pre.resourceVersion !== obj.metadata.resourceVersion) {
      conflict(def.resource, def.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${obj.metadata.resourceVersion}`);
    }
    const dry = q.getAll('dryRun').includes('All') || (opts.dryRun ?? []).includes('All');
    const policy = q.get('propagationPolicy') ?? opts.propagationPolicy ?? 'Background';
    if (!dry) this.removeCascading(def, obj, policy);
    if (def.kind === 'Pod' || def.kind === 'Namespace') return obj;
    return success({ name, group: def.group || undefined, kind: def.resource, uid: obj.metadata.uid });
  }

  deleteCollection(def: ResourceDef, namespace: string | undefined, q: Query): JsonObject {
    const list = this.list(def, namespace, new URLSearchParams({ labelSelector: q.get('labelSelector') ?? '', fieldSelector: q.get('fieldSelector') ?? '' }));
    if (!q.getAll('dryRun').includes('All')) for (const o of list.items as unknown as KubeObject[]) this.removeCascading(def, o, q.get('propagationPolicy') ?? 'Background');
    return list;
  }

  /** Deletes an object and, unless orphaned, what it owns (ownerReferences) or, for a namespace, holds. */
  removeCascading(def: ResourceDef, obj: KubeObject, policy: string): void {
    this.store.remove(resourceKey(def), obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (def.kind === 'Namespace') {
      for (const r of RESOURCES) if (r.namespaced) for (const o of this.store.list(resourceKey(r), obj.metadata.name)) this.store.remove(resourceKey(r), o.metadata.namespace ?? '', o.metadata.name ?? '');
      return;
    }
    for (const r of RESOURCES) {
      if (!r.namespaced) continue;
      for (const o of this.store.list(resourceKey(r), obj.metadata.namespace)) {
        const refs = (o.metadata.ownerReferences as Array<{ uid: string }> | undefined) ?? [];
        if (!refs.some((x) => x.uid === obj.metadata.uid)) continue;
        if (policy === 'Orphan') {
          const copy = clone(o);
          copy.metadata.ownerReferences = refs.filter((x) => x.uid !== obj.metadata.uid);
          if (!(copy.metadata.ownerReferences as unknown[]).length) delete copy.metadata.ownerReferences;
          this.store.put(resourceKey(r), copy, 'MODIFIED');
        } else this.removeCascading(r, o, policy);
      }
    }
  }
}

export function scaleOf(def: ResourceDef, obj: KubeObject): KubeObject {
  const o = obj as unknown as { spec?: { replicas?: number; selector?: unknown }; status?: { replicas?: number } };
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion, creationTimestamp: obj.metadata.creationTimestamp },
    spec: { replicas: o.spec?.replicas ?? 0 },
    status: { replicas: o.status?.replicas ?? 0, selector: selectorString(o.spec?.selector) },
  } as KubeObject;
}

function matcher(q: Query): Matcher {
  const l = labelMatcher(q.get('labelSelector'));
  const f = fieldMatcher(q.get('fieldSelector'));
  return (o) => l(o) && f(o);
}

/** What the API server names a manager that did not say: the client's program name. */
function defaultManager(userAgent: string): string {
  return userAgent.split('/')[0] || 'unknown';
}

function asObject(body: unknown, def: ResourceDef): KubeObject {
  if (!isObject(body as Json)) fail(400, `Object '${def.kind}' is missing in the request body`);
  const obj = clone(body) as KubeObject;
  const gv = groupVersion(def.group, def.version);
  if (obj.kind && obj.kind !== def.kind) fail(400, `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
  if (obj.apiVersion && obj.apiVersion !== gv) fail(400, `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
  if (!isObject(obj.metadata as Json)) obj.metadata = {};
  return obj;
}

function asScale(body: unknown): KubeObject {
  if (!isObject(body as Json)) fail(400, 'Object \'Scale\' is missing in the request body');
  const s = body as KubeObject;
  s.metadata ??= {};
  return s;
}

// ---- HTTP encoding ----

export function parseBody(raw: Buffer, contentType: string): unknown {
  if (!raw.length) return undefined;
  const type = contentType.split(';')[0].trim();
  if (type === 'application/vnd.kubernetes.protobuf') return decodeKubeProtobuf(raw);
  try {
    return type === 'application/yaml' ? parseYaml(raw.toString('utf8')) : JSON.parse(raw.toString('utf8'));
  } catch (e) {
    return fail(400, `the body of the request could not be decoded: ${(e as Error).message.split('\n')[0]}`);
  }
}

export interface Negotiated {
  table: boolean;
  partial: boolean;
}

export function negotiate(accept: string): Negotiated {
  return { table: /as=Table/.test(accept), partial: /as=PartialObjectMetadata/.test(accept) };
}

/** An object or list in the form the client asked for. */
export function render(def: ResourceDef, body: KubeObject | JsonObject, neg: Negotiated, q: Query, isList: boolean): unknown {
  if (neg.table) {
    const items = isList ? ((body as JsonObject).items as unknown as KubeObject[]) : [body as KubeObject];
    const meta = isList ? ((body as JsonObject).metadata as JsonObject) : { resourceVersion: (body as KubeObject).metadata.resourceVersion ?? '' };
    return tableOf(def, items, meta, { includeObject: includeObject(q), noHeaders: false });
  }
  if (neg.partial) {
    if (!isList) return partialMetadata(body as KubeObject);
    const list = body as JsonObject;
    return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: list.metadata, items: (list.items as unknown as KubeObject[]).map(partialMetadata) };
  }
  return body;
}

export function includeObject(q: Query): 'None' | 'Object' | 'Metadata' {
  const v = q.get('includeObject');
  return v === 'Object' ? 'Object' : v === 'None' ? 'None' : 'Metadata';
}

const GZIP_MIN = 128 * 1024;

/**
 * A JSON answer, or YAML when the client's first choice is application/yaml; gzipped above
 * 128 KiB when the client accepts it, as the API server does.
 */
export function sendJson(req: http.IncomingMessage, res: http.ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const yaml = contentType === 'application/json' && /^\s*application\/yaml\b/.test(String(req.headers.accept ?? ''));
  if (yaml) contentType = 'application/yaml';
  const data = Buffer.from(yaml ? stringifyYaml(body) : JSON.stringify(body));
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private', 'Audit-Id': auditId() };
  if (data.length >= GZIP_MIN && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    const z = zlib.gzipSync(data, { level: 1 });
    res.writeHead(code, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': z.length, Vary: 'Accept-Encoding' });
    res.end(z);
    return;
  }
  res.writeHead(code, { ...headers, 'Content-Length': data.length });
  res.end(data);
}

export function sendStatus(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  const status = err instanceof StatusError ? err.status : failure(500, `fixture error: ${(err as Error)?.message ?? String(err)}`);
  sendJson(req, res, status.code, status);
}

let audit = 0;
function auditId(): string {
  audit++;
  return `00000000-0000-4000-8000-${audit.toString(16).padStart(12, '0')}`;
}
