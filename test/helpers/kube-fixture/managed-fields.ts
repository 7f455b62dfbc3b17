/**
 * Field ownership and server-side apply (`application/apply-patch+yaml`), as the API documents
 * it: every write records which leaf fields its fieldManager set in `metadata.managedFields`
 * (FieldsV1: `f:<field>`, `k:<merge key JSON>` for keyed list items); an apply merges the applied
 * configuration into the live object, removes fields the same manager applied before and no
 * longer applies, and answers 409 Conflict naming the other manager when it would change a field
 * someone else owns, unless `force=true` takes it.
 */
import { mergeKeyFor, isObject, clone, type Json, type JsonObject } from './patch';
import type { KubeObject, ManagedFieldsEntry } from './resources';
import { fail } from './status';

type FieldPath = string[];

const SKIP_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds']);

/** Leaf paths an object sets, with their values. */
function leaves(obj: Json, path: string[] = [], raw: string[] = [], out = new Map<string, { path: FieldPath; value: Json }>()): Map<string, { path: FieldPath; value: Json }> {
  if (isObject(obj) && Object.keys(obj).length > 0) {
    for (const [k, v] of Object.entries(obj)) {
      if (raw.length === 0 && (k === 'apiVersion' || k === 'kind' || k === 'status')) continue;
      if (raw.length === 1 && raw[0] === 'metadata' && SKIP_META.has(k)) continue;
      const sub = [...raw, k];
      const mk = mergeKeyFor(sub);
      if (Array.isArray(v) && mk !== undefined && v.length > 0) {
        for (const item of v) {
          const el = mk === '' || !isObject(item) ? `v:${JSON.stringify(item)}` : `k:${JSON.stringify({ [mk]: item[mk] ?? null })}`;
          const p = [...path, `f:${k}`, el];
          if (isObject(item)) {
            out.set(JSON.stringify([...p, '.']), { path: [...p, '.'], value: null });
            leaves(item, p, sub, out);
          } else out.set(JSON.stringify(p), { path: p, value: item });
        }
      } else leaves(v, [...path, `f:${k}`], sub, out);
    }
  } else if (path.length) out.set(JSON.stringify(path), { path, value: obj });
  return out;
}

function valueAt(obj: Json, path: FieldPath): Json | undefined {
  let cur: Json | undefined = obj;
  for (const el of path) {
    if (el === '.') return cur;
    if (el.startsWith('f:')) cur = isObject(cur) ? cur[el.slice(2)] : undefined;
    else if (el.startsWith('k:')) {
      const want = JSON.parse(el.slice(2)) as JsonObject;
      cur = Array.isArray(cur) ? cur.find((x) => isObject(x) && Object.entries(want).every(([k, v]) => JSON.stringify(x[k] ?? null) === JSON.stringify(v))) : undefined;
    } else if (el.startsWith('v:')) cur = Array.isArray(cur) ? cur.find((x) => JSON.stringify(x) === el.slice(2)) : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function removeAt(obj: Json, path: FieldPath): void {
  const p = path[path.length - 1] === '.' ? path.slice(0, -1) : path;
  const last = p[p.length - 1];
  const holder = valueAt(obj, p.slice(0, -1));
  if (last.startsWith('f:')) {
    if (isObject(holder)) delete holder[last.slice(2)];
  } else if (Array.isArray(holder)) {
    const item = valueAt(holder, [last]);
    const i = holder.indexOf(item as Json);
    if (i >= 0) holder.splice(i, 1);
  }
}

function toFieldsV1(paths: FieldPath[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const p of paths) {
    let cur = root;
    for (const el of p) cur = (cur[el] ??= {}) as Record<string, unknown>;
  }
  return root;
}

function fromFieldsV1(tree: unknown, prefix: string[] = [], out: FieldPath[] = []): FieldPath[] {
  if (!isObject(tree as Json)) return out;
  const entries = Object.entries(tree as Record<string, unknown>);
  if (entries.length === 0 && prefix.length) out.push(prefix);
  for (const [k, v] of entries) {
    if (k === '.') out.push([...prefix, '.']);
    else fromFieldsV1(v, [...prefix, k], out);
  }
  return out;
}

function entrySet(e: ManagedFieldsEntry): Map<string, FieldPath> {
  return new Map(fromFieldsV1(e.fieldsV1).map((p) => [JSON.stringify(p), p]));
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Deep merge of an applied configuration into a live object (keyed lists merged by key). */
function mergeApplied(live: Json, applied: Json, path: string[] = []): Json {
  if (!isObject(applied)) return clone(applied);
  const out: JsonObject = isObject(live) ? clone(live) : {};
  for (const [k, v] of Object.entries(applied)) {
    const sub = [...path, k];
    const mk = mergeKeyFor(sub);
    const cur = out[k];
    if (Array.isArray(v) && mk !== undefined && Array.isArray(cur)) {
      const list = clone(cur);
      for (const item of v) {
        const i = list.findIndex((x) => (mk === '' || !isObject(item) ? JSON.stringify(x) === JSON.stringify(item) : isObject(x) && JSON.stringify(x[mk]) === JSON.stringify(item[mk])));
        if (i >= 0) list[i] = mergeApplied(list[i], item, sub);
        else list.push(clone(item));
      }
      out[k] = list;
    } else if (isObject(v)) out[k] = mergeApplied(cur ?? null, v, sub);
    else out[k] = clone(v);
  }
  return out;
}

/** Server-side apply of `applied` by `manager` onto `live` (null when the object is new). */
export function serverSideApply(live: KubeObject | null, applied: KubeObject, manager: string, force: boolean, apiVersion: string, resource: string): KubeObject {
  const appliedLeaves = leaves(applied as unknown as Json);
  const managed: ManagedFieldsEntry[] = clone(live?.metadata.managedFields ?? []);
  const mine = managed.find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
  const conflicts: string[] = [];
  const taken = new Set<string>();
  for (const e of managed) {
    if (e === mine) continue;
    const owned = entrySet(e);
    for (const [k, { path, value }] of appliedLeaves) {
      if (!owned.has(k) || path[path.length - 1] === '.') continue;
      const liveValue = live ? valueAt(live as unknown as Json, path) : undefined;
      if (JSON.stringify(liveValue) === JSON.stringify(value)) continue; // same value: shared ownership
      if (force) taken.add(k);
      else {
        const sub = e.subresource ? ` with subresource "${e.subresource}"` : '';
        conflicts.push(`conflict with "${e.manager}"${sub}${e.operation === 'Update' ? ' using ' + e.apiVersion : ''}: .${path.filter((x) => x !== '.').map((x) => x.slice(2)).join('.')}`);
      }
    }
  }
  if (conflicts.length) {
    fail(409, `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? 's' : ''}: ${conflicts.join('\n')}`, {
      reason: 'Conflict',
      details: { name: applied.metadata.name, kind: resource, causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: c })) },
    });
  }
  const merged = mergeApplied((live ?? {}) as Json, applied as unknown as Json) as unknown as KubeObject;
  // Fields this manager applied last time and no longer applies go, unless someone else owns them too.
  if (mine) {
    const others = new Set<string>();
    for (const e of managed) if (e !== mine) for (const k of entrySet(e).keys()) others.add(k);
    for (const [k, p] of entrySet(mine)) if (!appliedLeaves.has(k) && !others.has(k)) removeAt(merged as unknown as Json, p);
  }
  const rest = managed
    .filter((e) => e !== mine)
    .map((e) => ({ ...e, fieldsV1: toFieldsV1([...entrySet(e)].filter(([k]) => !taken.has(k)).map(([, p]) => p)) }))
    .filter((e) => Object.keys(e.fieldsV1).length > 0);
  merged.metadata.managedFields = [
    ...rest,
    { manager, operation: 'Apply', apiVersion, time: now(), fieldsType: 'FieldsV1', fieldsV1: toFieldsV1([...appliedLeaves.values()].map((l) => l.path)) },
  ];
  return merged;
}

/** After a create, update or patch: `manager` owns what it changed; fields now gone are owned by nobody. */
export function recordUpdate(before: KubeObject | null, after: KubeObject, manager: string, apiVersion: string, subresource?: string): void {
  const oldLeaves = before ? leaves(before as unknown as Json) : new Map();
  const newLeaves = leaves(after as unknown as Json);
  const changed = new Map<string, FieldPath>();
  for (const [k, l] of newLeaves) {
    const o = oldLeaves.get(k);
    if (!o || JSON.stringify(o.value) !== JSON.stringify(l.value)) changed.set(k, l.path);
  }
  const managed = (after.metadata.managedFields ?? before?.metadata.managedFields ?? []).map((e) => clone(e));
  const out: ManagedFieldsEntry[] = [];
  let mine: ManagedFieldsEntry | undefined;
  for (const e of managed) {
    const set = entrySet(e);
    if (e.manager === manager && e.operation === 'Update' && e.subresource === subresource) {
      mine = e;
      continue;
    }
    const kept = [...set].filter(([k]) => !changed.has(k) && newLeaves.has(k)).map(([, p]) => p);
    if (kept.length) out.push({ ...e, fieldsV1: toFieldsV1(kept) });
  }
  const owned = new Map<string, FieldPath>(mine ? [...entrySet(mine)].filter(([k]) => newLeaves.has(k)) : []);
  for (const [k, p] of changed) owned.set(k, p);
  if (owned.size) {
    const entry: ManagedFieldsEntry = { manager, operation: 'Update', apiVersion, time: now(), fieldsType: 'FieldsV1', fieldsV1: toFieldsV1([...owned.values()]) };
    if (subresource) entry.subresource = subresource;
    out.push(entry);
  }
  after.metadata.managedFields = out;
}
