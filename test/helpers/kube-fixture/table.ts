/**
 * Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns the real API server
 * prints per kind (priority 1 columns appear with `-o wide`) and each row's object as
 * PartialObjectMetadata (or the whole object with `includeObject=Object`).
 */
import type { KubeObject, ResourceDef } from './resources';
import type { JsonObject } from './patch';
import { selectorString } from './selectors';

interface Column { name: string; type: string; format: string; description: string; priority: number }

const col = (name: string, priority = 0, type = 'string', format = ''): Column => ({ name, type, format, description: name, priority });
const nameCol: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const age = col('Age');

/** k8s.io/apimachinery's HumanDuration, the way `AGE` reads in kubectl. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 0) return '<invalid>';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (y < 8) return `${y}y${d % 365}d`;
  return `${y}y`;
}

const ageOf = (o: KubeObject) => (o.metadata.creationTimestamp ? humanDuration(Date.now() - Date.parse(o.metadata.creationTimestamp)) : '<unknown>');
const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((c, k) => (c && typeof c === 'object' ? (c as Record<string, unknown>)[k] : undefined), o);
const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const orNone = (v: unknown) => (v === undefined || v === null || v === '' ? '<none>' : String(v));

function podCells(p: KubeObject): unknown[] {
  const statuses = (get(p, 'status', 'containerStatuses') as JsonObject[] | undefined) ?? [];
  const containers = (get(p, 'spec', 'containers') as unknown[] | undefined) ?? [];
  const ready = statuses.filter((c) => c.ready === true).length;
  const restarts = statuses.reduce((n, c) => n + num(c.restartCount), 0);
  let status = String(get(p, 'status', 'reason') ?? get(p, 'status', 'phase') ?? 'Pending');
  for (const c of statuses) {
    const waiting = get(c, 'state', 'waiting', 'reason');
    const term = get(c, 'state', 'terminated', 'reason');
    if (waiting) status = String(waiting);
    else if (term) status = String(term);
  }
  if (p.metadata.deletionTimestamp) status = 'Terminating';
  return [p.metadata.name, `${ready}/${containers.length}`, status, restarts, ageOf(p),
    orNone(get(p, 'status', 'podIP')), orNone(get(p, 'spec', 'nodeName')), '<none>', '<none>'];
}

const TABLES: Record<string, { columns: Column[]; cells: (o: KubeObject) => unknown[] }> = {
  Pod: {
    columns: [nameCol, col('Ready'), col('Status'), col('Restarts', 0, 'string'), age, col('IP', 1), col('Node', 1), col('Nominated Node', 1), col('Readiness Gates', 1)],
    cells: podCells,
  },
  Namespace: { columns: [nameCol, col('Status'), age], cells: (o) => [o.metadata.name, get(o, 'status', 'phase') ?? 'Active', ageOf(o)] },
  ConfigMap: { columns: [nameCol, col('Data', 0, 'integer'), age], cells: (o) => [o.metadata.name, Object.keys((o.data as object) ?? {}).length + Object.keys((o.binaryData as object) ?? {}).length, ageOf(o)] },
  Secret: { columns: [nameCol, col('Type'), col('Data', 0, 'integer'), age], cells: (o) => [o.metadata.name, o.type ?? 'Opaque', Object.keys((o.data as object) ?? {}).length, ageOf(o)] },
  ServiceAccount: { columns: [nameCol, col('Secrets', 0, 'integer'), age], cells: (o) => [o.metadata.name, ((o.secrets as unknown[]) ?? []).length, ageOf(o)] },
  Service: {
    columns: [nameCol, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), age, col('Selector', 1)],
    cells: (o) => [o.metadata.name, get(o, 'spec', 'type') ?? 'ClusterIP', orNone(get(o, 'spec', 'clusterIP')), '<none>',
      (((get(o, 'spec', 'ports') as JsonObject[]) ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>'), ageOf(o),
      Object.entries((get(o, 'spec', 'selector') as Record<string, string>) ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>'],
  },
  Event: {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message')],
    cells: (o) => [ageOf(o), o.type ?? 'Normal', o.reason ?? '', `${String(get(o, 'involvedObject', 'kind') ?? '').toLowerCase()}/${String(get(o, 'involvedObject', 'name') ?? '')}`, o.message ?? ''],
  },
  Deployment: {
    columns: [nameCol, col('Ready'), col('Up-to-date', 0, 'integer'), col('Available', 0, 'integer'), age, col('Containers', 1), col('Images', 1), col('Selector', 1)],
    cells: (o) => {
      const cs = (get(o, 'spec', 'template', 'spec', 'containers') as JsonObject[]) ?? [];
      return [o.metadata.name, `${num(get(o, 'status', 'readyReplicas'))}/${num(get(o, 'spec', 'replicas'))}`, num(get(o, 'status', 'updatedReplicas')),
        num(get(o, 'status', 'availableReplicas')), ageOf(o), cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), selectorString(get(o, 'spec', 'selector')) || '<none>'];
    },
  },
  ReplicaSet: {
    columns: [nameCol, col('Desired', 0, 'integer'), col('Current', 0, 'integer'), col('Ready', 0, 'integer'), age, col('Containers', 1), col('Images', 1), col('Selector', 1)],
    cells: (o) => {
      const cs = (get(o, 'spec', 'template', 'spec', 'containers') as JsonObject[]) ?? [];
      return [o.metadata.name, num(get(o, 'spec', 'replicas')), num(get(o, 'status', 'replicas')), num(get(o, 'status', 'readyReplicas')), ageOf(o),
        cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), selectorString(get(o, 'spec', 'selector')) || '<none>'];
    },
  },
};

export function partialMetadata(o: KubeObject): JsonObject {
  const { managedFields: _m, ...metadata } = o.metadata;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: metadata as JsonObject };
}

export interface TableOptions {
  includeObject: 'None' | 'Object' | 'Metadata';
  noHeaders: boolean;
}

export function tableOf(r: ResourceDef, items: KubeObject[], listMeta: JsonObject, opts: TableOptions): JsonObject {
  const t = TABLES[r.kind] ?? { columns: [nameCol, age], cells: (o: KubeObject) => [o.metadata.name, ageOf(o)] };
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: opts.noHeaders ? [] : t.columns,
    rows: items.map((o) => ({
      cells: t.cells(o),
      object: opts.includeObject === 'Object' ? (o as unknown as JsonObject) : opts.includeObject === 'None' ? null : partialMetadata(o),
    })) as unknown as JsonObject[],
  } as unknown as JsonObject;
}
