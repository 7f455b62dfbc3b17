/**
 * Kubernetes objects as the recording keeps them: Secrets masked by the masking engine (a list's
 * items and a watch event's object carry no `kind`, so the URL's resource says what they are),
 * and the noise that changes on every write (managedFields, resourceVersion) dropped so a
 * before/after diff shows exactly what the agent changed.
 */
import { parse as parseYaml } from 'yaml';
import type { Json, Masker, SecretHit } from '../common/types';

type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Masks every Secret in a value: a Secret, a list of them (`items`), a watch event (`object`), or
 * a `List` of mixed kinds. `secretResource` is true when the request was for `secrets`: then an
 * object without a kind is a Secret too.
 */
export function maskSecrets(masker: Masker, value: Json, secretResource: boolean): { value: Json; hits: SecretHit[] } {
  const hits: SecretHit[] = [];
  const one = (o: JsonObject): Json => {
    const hadKind = 'kind' in o;
    const hadApi = 'apiVersion' in o;
    // the engine knows a Secret by its kind; a list item has none
    const r = masker.maskValue({ ...o, kind: 'Secret', apiVersion: typeof o.apiVersion === 'string' ? o.apiVersion : 'v1' });
    hits.push(...r.hits);
    const out = r.value as JsonObject;
    if (!hadKind) delete out.kind;
    if (!hadApi) delete out.apiVersion;
    return out;
  };
  const secretLike = (o: JsonObject): boolean => o.kind === 'Secret' || (secretResource && (o.kind === undefined || o.kind === null));
  /** a JSON patch op on a Secret's data: `{"op":"replace","path":"/data/password","value":"…"}` */
  const patchOp = (op: Json): Json => {
    if (!isObject(op) || typeof op.path !== 'string') return op;
    const m = /^\/(data|stringData)(?:\/(.+))?$/.exec(op.path);
    if (!m || op.value === undefined) return op;
    const field = m[1];
    const value = m[2] !== undefined ? { [m[2]]: op.value } : op.value;
    const masked = one({ [field]: value }) as JsonObject;
    const back = masked[field];
    return { ...op, value: m[2] !== undefined && isObject(back) ? back[m[2]] : back };
  };
  const walk = (v: Json, depth: number): Json => {
    if (Array.isArray(v) && depth === 0 && secretResource) return v.map(patchOp);
    if (!isObject(v) || depth > 3) return v;
    if (v.kind === 'Secret') return one(v);
    const isList = Array.isArray(v.items);
    const isEvent = typeof v.type === 'string' && isObject(v.object);
    if (!isList && !isEvent) return depth === 0 && secretLike(v) ? one(v) : v;
    const out: JsonObject = { ...v };
    if (isList) out.items = (v.items as Json[]).map((x) => (isObject(x) && secretLike(x) ? one(x) : walk(x, depth + 1)));
    if (isEvent) {
      const o = v.object as JsonObject;
      out.object = secretLike(o) && !Array.isArray(o.items) ? one(o) : walk(o, depth + 1);
    }
    return out;
  };
  return { value: walk(value, 0), hits };
}

/** Drops what changes on every write and says nothing about the change: managedFields, resourceVersion. */
export function dropNoise(v: Json): Json {
  if (!isObject(v)) return v;
  const out: JsonObject = { ...v };
  if (isObject(out.metadata)) {
    const md: JsonObject = { ...out.metadata };
    delete md.managedFields;
    delete md.resourceVersion;
    out.metadata = md;
  }
  if (Array.isArray(out.items)) out.items = out.items.map(dropNoise);
  return out;
}

/** A request or response body as a value: JSON, or the YAML of a server-side apply. Null when it is neither. */
export function parseBody(buf: Buffer, contentType: string): Json | null {
  if (buf.length === 0) return null;
  const ct = contentType.toLowerCase();
  if (ct.includes('protobuf') || ct.includes('cbor')) return null;
  const text = buf.toString('utf8');
  try {
    return JSON.parse(text) as Json;
  } catch {
    // not JSON
  }
  if (ct.includes('yaml')) {
    try {
      return (parseYaml(text) ?? null) as Json;
    } catch {
      return null;
    }
  }
  return null;
}

/** What a request body says for the command line: the name of what is created, a scale's replicas, a rollout restart. */
export function bodyFacts(body: Json | null): { name?: string; replicas?: number; restart?: boolean } {
  if (!isObject(body)) return {};
  const facts: { name?: string; replicas?: number; restart?: boolean } = {};
  const md = body.metadata;
  if (isObject(md) && typeof md.name === 'string') facts.name = md.name;
  const spec = body.spec;
  if (isObject(spec) && typeof spec.replicas === 'number') facts.replicas = spec.replicas;
  const tmpl = isObject(spec) && isObject(spec.template) ? spec.template : null;
  const ann = tmpl && isObject(tmpl.metadata) && isObject(tmpl.metadata.annotations) ? tmpl.metadata.annotations : null;
  if (ann && 'kubectl.kubernetes.io/restartedAt' in ann) facts.restart = true;
  return facts;
}

/** A Status object the way the API server answers errors, so kubectl prints it in its own words. */
export function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
