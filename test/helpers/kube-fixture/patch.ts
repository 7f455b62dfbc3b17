/**
 * The four PATCH bodies the API accepts, applied to plain JSON:
 * - JSON patch (RFC 6902, `application/json-patch+json`),
 * - JSON merge patch (RFC 7386, `application/merge-patch+json`),
 * - strategic merge patch (`application/strategic-merge-patch+json`): a merge patch where lists
 *   the API marks `patchStrategy: merge` are merged by their `patchMergeKey` (containers and env by
 *   `name`, volumeMounts by `mountPath`, container ports by `containerPort`, ...), with the
 *   `$patch`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys` directives
 *   kubectl's apply and edit send.
 * Server-side apply lives in managed-fields.ts.
 */
import { fail } from './status';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function clone<T>(v: T): T {
  return structuredClone(v);
}

// ---- JSON patch -------------------------------------------------------------------------------

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) fail(422, `the server rejected our request due to an error in our request: invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, tokens: string[], op: string, path: string): { parent: Json; last: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined as unknown as Json;
    if (cur === undefined) fail(422, `the server rejected our request due to an error in our request: ${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return { parent: cur, last: tokens[tokens.length - 1] };
}

function getAt(doc: Json, path: string, op: string): Json {
  let cur: Json = doc;
  for (const t of pointer(path)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(t)] : isObject(cur) ? cur[t] : undefined;
    if (next === undefined) fail(422, `the server rejected our request due to an error in our request: ${op} operation does not apply: doc is missing path: "${path}": missing value`);
    cur = next;
  }
  return cur;
}

function addAt(doc: Json, path: string, value: Json, op: string): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, op, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) fail(422, `the server rejected our request due to an error in our request: ${op} operation does not apply: index out of range: "${path}"`);
    parent.splice(i, 0, value);
  } else if (isObject(parent)) parent[last] = value;
  else fail(422, `the server rejected our request due to an error in our request: ${op} operation does not apply: doc is missing path: "${path}"`);
  return doc;
}

function removeAt(doc: Json, path: string, op: string): Json {
  const tokens = pointer(path);
  const { parent, last } = parentOf(doc, tokens, op, path);
  if (Array.isArray(parent) && Number(last) < parent.length) parent.splice(Number(last), 1);
  else if (isObject(parent) && last in parent) delete parent[last];
  else fail(422, `the server rejected our request due to an error in our request: ${op} operation does not apply: doc is missing path: "${path}": missing value`);
  return doc;
}

export function applyJsonPatch(target: Json, patch: unknown): Json {
  if (!Array.isArray(patch)) fail(400, 'the server rejected our request due to an error in our request: json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(target);
  for (const o of patch as Array<{ op: string; path: string; from?: string; value?: Json }>) {
    switch (o.op) {
      case 'add': doc = addAt(doc, o.path, clone(o.value as Json), 'add'); break;
      case 'remove': doc = removeAt(doc, o.path, 'remove'); break;
      case 'replace': getAt(doc, o.path, 'replace'); doc = addAt(removeAt(doc, o.path, 'replace'), o.path, clone(o.value as Json), 'replace'); break;
      case 'move': { const v = getAt(doc, o.from ?? '', 'move'); doc = addAt(removeAt(doc, o.from ?? '', 'move'), o.path, v, 'move'); break; }
      case 'copy': doc = addAt(doc, o.path, clone(getAt(doc, o.from ?? '', 'copy')), 'copy'); break;
      case 'test':
        if (JSON.stringify(getAt(doc, o.path, 'test')) !== JSON.stringify(o.value)) fail(422, `the server rejected our request due to an error in our request: testing value ${o.path} failed: test failed`);
        break;
      default: fail(422, `the server rejected our request due to an error in our request: Unexpected kind: ${o.op}`);
    }
  }
  return doc;
}

// ---- JSON merge patch -------------------------------------------------------------------------

export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k] ?? null, v);
  }
  return out;
}

// ---- strategic merge patch --------------------------------------------------------------------

/**
 * patchMergeKey of the merge-strategy lists of the kinds served, by field name and the name of
 * the field holding it (`ports` is keyed differently in a container and a Service spec).
 */
export function mergeKeyFor(path: string[]): string | undefined {
  const field = path[path.length - 1];
  const parent = path[path.length - 2];
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers':
    case 'env': case 'volumes': case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts': return 'mountPath';
    case 'volumeDevices': return 'devicePath';
    case 'ports': return parent === 'spec' && !path.includes('containers') ? 'port' : 'containerPort';
    case 'ownerReferences': return 'uid';
    case 'conditions': return 'type';
    case 'hostAliases': return 'ip';
    case 'topologySpreadConstraints': return 'topologyKey';
    case 'finalizers': return path.length === 2 && path[0] === 'metadata' ? '' : undefined; // a merged set of strings
    default: return undefined;
  }
}

const ORDER = '$setElementOrder/';
const DEL_PRIM = '$deleteFromPrimitiveList/';

export function applyStrategicMerge(target: Json, patch: Json, path: string[] = []): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return null;
  const out: JsonObject = isObject(target) ? clone(target) : {};
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith(ORDER)) continue;
    if (k.startsWith(DEL_PRIM)) {
      const field = k.slice(DEL_PRIM.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => JSON.stringify(d) === JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const sub = [...path, k];
    const key = mergeKeyFor(sub);
    if (Array.isArray(v) && key !== undefined) {
      out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, key, sub);
    } else if (isObject(v)) {
      const merged = applyStrategicMerge(out[k] ?? null, v, sub);
      if (merged === null) delete out[k];
      else out[k] = merged;
    } else out[k] = clone(v);
  }
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith(ORDER) || !Array.isArray(order)) continue;
    const field = k.slice(ORDER.length);
    const key = mergeKeyFor([...path, field]);
    if (Array.isArray(out[field]) && key !== undefined) out[field] = reorder(out[field] as Json[], order, key);
  }
  if (Array.isArray(retain)) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}

function itemKey(item: Json, key: string): string {
  return key === '' ? JSON.stringify(item) : isObject(item) ? JSON.stringify(item[key] ?? null) : JSON.stringify(item);
}

function mergeList(current: Json[], patch: Json[], key: string, path: string[]): Json[] {
  const out = clone(current);
  for (const p of patch) {
    if (isObject(p) && p.$patch === 'replace') return patch.filter((x) => !(isObject(x) && x.$patch === 'replace')).map(stripDirectives);
    const id = itemKey(isObject(p) ? Object.fromEntries(Object.entries(p).filter(([k]) => k !== '$patch')) : p, key);
    const i = out.findIndex((x) => itemKey(x, key) === id);
    if (isObject(p) && p.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = key === '' ? clone(p) : (applyStrategicMerge(out[i], p, path) as Json);
    else out.push(key === '' ? clone(p) : stripDirectives(applyStrategicMerge(null, p, path)));
  }
  return out;
}

/** `$setElementOrder` lists the patched list's keys in their final order; the others keep theirs after. */
function reorder(list: Json[], order: Json[], key: string): Json[] {
  const ids = order.map((o) => itemKey(o, key));
  const listed = ids.map((id) => list.find((x) => itemKey(x, key) === id)).filter((x): x is Json => x !== undefined);
  const rest = list.filter((x) => !ids.includes(itemKey(x, key)));
  return [...listed, ...rest];
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}
