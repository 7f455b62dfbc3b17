/**
 * What one Kubernetes API request is, from its method, path and query alone (the way the API
 * server's own RequestInfoFactory reads them), and the kubectl-like line a reviewer reads for it:
 * `delete deployment web -n prod`, `get secrets -n prod`, `exec web-7f9 -n prod -- sh`.
 * Pure: no Node imports.
 */

export type KubeVerb =
  | 'get'
  | 'list'
  | 'watch'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'deletecollection'
  | 'connect'
  | 'discovery'
  | 'other';

export interface KubeRequest {
  verb: KubeVerb;
  method: string;
  path: string;
  /** '' for the core group */
  group: string;
  version: string;
  /** plural resource name (`pods`, `deployments`); '' for discovery and non-resource paths */
  resource: string;
  namespace: string;
  name: string;
  subresource: string;
  /** `?dryRun=All` */
  dryRun: boolean;
  fieldManager: string;
  /** for patches: json, merge, strategic, apply */
  patchType: string | null;
  /** for exec/attach: the command and whether stdin/tty were asked for */
  exec?: { command: string[]; container: string; stdin: boolean; tty: boolean };
  /** for logs */
  logs?: { container: string; follow: boolean; previous: boolean; tailLines: string };
  /** for port-forward */
  ports?: string[];
  labelSelector: string;
  fieldSelector: string;
  /** read, write or other */
  classification: 'read' | 'write' | 'other';
  /** the request mutates an object: the gateway records it before and after */
  mutation: boolean;
  /** the response streams (watch, logs -f, exec…): passed through as it arrives */
  streaming: boolean;
}

/** Resources that belong to no namespace: a list of them without a namespace is not `-A`. */
const CLUSTER_SCOPED = new Set([
  'namespaces', 'nodes', 'persistentvolumes', 'clusterroles', 'clusterrolebindings', 'customresourcedefinitions',
  'storageclasses', 'priorityclasses', 'csidrivers', 'csinodes', 'volumeattachments', 'ingressclasses', 'runtimeclasses',
  'mutatingwebhookconfigurations', 'validatingwebhookconfigurations', 'apiservices', 'certificatesigningrequests',
  'tokenreviews', 'selfsubjectaccessreviews', 'selfsubjectrulesreviews', 'subjectaccessreviews', 'componentstatuses',
  'validatingadmissionpolicies', 'validatingadmissionpolicybindings', 'flowschemas', 'prioritylevelconfigurations',
]);

/** Subresources of a namespace itself (`/api/v1/namespaces/x/status`), not resources inside it. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const PATCH_TYPES: Record<string, string> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
  'application/apply-patch+cbor': 'apply',
};

/** `pods` → `pod`, `networkpolicies` → `networkpolicy`, `ingresses` → `ingress`. */
export function singular(resource: string): string {
  if (resource === 'endpoints' || !resource.endsWith('s')) return resource;
  if (resource.endsWith('ies')) return resource.slice(0, -3) + 'y';
  if (/(ss|x|ch|sh)es$/.test(resource)) return resource.slice(0, -2);
  return resource.slice(0, -1);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Parses a request; `contentType` tells a patch's type. Never throws. */
export function parseKubeRequest(method: string, url: string, contentType = ''): KubeRequest {
  const m = method.toUpperCase();
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
  const parts = path.split('/').filter((p) => p !== '').map(decode);
  const info: KubeRequest = {
    verb: 'other',
    method: m,
    path,
    group: '',
    version: '',
    resource: '',
    namespace: '',
    name: '',
    subresource: '',
    dryRun: query.getAll('dryRun').some((v) => v !== ''),
    fieldManager: query.get('fieldManager') ?? '',
    patchType: null,
    labelSelector: query.get('labelSelector') ?? '',
    fieldSelector: query.get('fieldSelector') ?? '',
    classification: 'other',
    mutation: false,
    streaming: false,
  };
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    info.version = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    info.group = parts[1];
    info.version = parts[2];
    rest = parts.slice(3);
  } else {
    // /version, /api, /apis, /apis/apps, /openapi/v3…, /healthz: discovery and health
    info.verb = m === 'GET' || m === 'HEAD' ? 'discovery' : 'other';
    info.classification = info.verb === 'discovery' ? 'read' : 'other';
    return info;
  }
  if (rest.length === 0) {
    info.verb = m === 'GET' || m === 'HEAD' ? 'discovery' : 'other';
    info.classification = 'read';
    return info;
  }
  let legacyWatch = false;
  if (rest[0] === 'watch') {
    legacyWatch = true;
    rest = rest.slice(1);
  }
  if (rest[0] === 'namespaces' && rest.length >= 2) {
    if (rest.length === 2 || NAMESPACE_SUBRESOURCES.has(rest[2])) {
      info.namespace = rest[1];
    } else {
      info.namespace = rest[1];
      rest = rest.slice(2);
    }
  }
  info.resource = rest[0] ?? '';
  info.name = rest[1] ?? '';
  info.subresource = rest.slice(2).join('/');
  // `/api/v1/namespaces/prod` is the namespace object itself
  if (info.resource === 'namespaces' && info.name !== '' && info.namespace === info.name) info.namespace = '';

  const watchParam = query.get('watch');
  const watching = legacyWatch || watchParam === 'true' || watchParam === '1';
  switch (m) {
    case 'GET':
    case 'HEAD':
      info.verb = watching ? 'watch' : info.name ? 'get' : 'list';
      break;
    case 'POST':
      info.verb = 'create';
      break;
    case 'PUT':
      info.verb = 'update';
      break;
    case 'PATCH':
      info.verb = 'patch';
      info.patchType = PATCH_TYPES[contentType.split(';')[0].trim().toLowerCase()] ?? null;
      break;
    case 'DELETE':
      info.verb = info.name ? 'delete' : 'deletecollection';
      break;
    default:
      info.verb = 'other';
  }
  const sub = info.subresource;
  if (sub === 'exec' || sub === 'attach') {
    info.verb = 'connect';
    info.exec = {
      command: query.getAll('command'),
      container: query.get('container') ?? '',
      stdin: truthy(query.get('stdin')),
      tty: truthy(query.get('tty')),
    };
  } else if (sub === 'portforward') {
    info.verb = 'connect';
    info.ports = query.getAll('ports');
  } else if (sub === 'proxy' || sub.startsWith('proxy/')) {
    info.verb = 'connect';
  } else if (sub === 'log') {
    info.logs = { container: query.get('container') ?? '', follow: truthy(query.get('follow')), previous: truthy(query.get('previous')), tailLines: query.get('tailLines') ?? '' };
  }
  info.streaming = info.verb === 'watch' || info.verb === 'connect' || (info.logs?.follow ?? false);
  info.mutation = ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(info.verb) && sub !== 'eviction' && !isReview(info.resource);
  info.classification =
    info.verb === 'get' || info.verb === 'list' || info.verb === 'watch' || isReview(info.resource)
      ? 'read'
      : info.verb === 'connect'
        ? 'other'
        : info.verb === 'other'
          ? 'other'
          : 'write';
  return info;
}

/** Access reviews are POSTs that ask a question and change nothing (`kubectl auth can-i`). */
function isReview(resource: string): boolean {
  return /reviews$/.test(resource);
}

function truthy(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** `deployments` in group `apps` reads `deployment.apps` where kubectl would need the group to tell it apart. */
function kind(r: KubeRequest, plural: boolean): string {
  return plural ? r.resource : singular(r.resource);
}

function nsFlag(r: KubeRequest): string {
  if (r.namespace) return ` -n ${r.namespace}`;
  if (!r.name && !CLUSTER_SCOPED.has(r.resource)) return ' -A';
  return '';
}

function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** What the request body told about it: the created object's name, a patch that is a rollout restart, a scale's replicas. */
export interface BodyFacts {
  name?: string;
  replicas?: number;
  restart?: boolean;
}

/** The line a reviewer reads, in kubectl's words; control characters from the URL shown escaped, on one line. */
export function kubectlText(r: KubeRequest, body: BodyFacts = {}): string {
  return textOf(r, body).replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function textOf(r: KubeRequest, body: BodyFacts): string {
  const sel = (r.labelSelector ? ` -l ${shellWord(r.labelSelector)}` : '') + (r.fieldSelector ? ` --field-selector ${shellWord(r.fieldSelector)}` : '');
  const dry = r.dryRun ? ' --dry-run=server' : '';
  const subFlag = r.subresource && r.subresource !== 'scale' ? ` --subresource=${r.subresource}` : '';
  switch (r.verb) {
    case 'discovery':
    case 'other':
      return `${r.verb === 'discovery' ? 'discovery' : 'request'} ${r.method} ${r.path}`;
    case 'list':
      return `get ${kind(r, true)}${nsFlag(r)}${sel}`;
    case 'watch':
      return `get ${r.name ? `${kind(r, false)} ${r.name}` : kind(r, true)}${nsFlag(r)}${sel} --watch`;
    case 'get':
      if (r.logs) {
        const l = r.logs;
        return `logs${l.follow ? ' -f' : ''} ${r.name}${nsFlag(r)}${l.container ? ` -c ${l.container}` : ''}${l.previous ? ' --previous' : ''}${l.tailLines ? ` --tail=${l.tailLines}` : ''}`;
      }
      return `get ${kind(r, false)} ${r.name}${nsFlag(r)}${subFlag}`;
    case 'create': {
      if (r.subresource === 'eviction') return `evict pod ${r.name}${nsFlag(r)}`;
      if (isReview(r.resource)) return `auth ${singular(r.resource)}`;
      const name = r.name || body.name;
      return `create ${kind(r, false)}${name ? ` ${name}` : ''}${nsFlag({ ...r, name: name ?? '' })}${subFlag}${dry}`;
    }
    case 'update':
      if (r.subresource === 'scale') return `scale ${kind(r, false)} ${r.name}${nsFlag(r)}${body.replicas !== undefined ? ` --replicas=${body.replicas}` : ''}${dry}`;
      return `replace ${kind(r, false)} ${r.name}${nsFlag(r)}${subFlag}${dry}`;
    case 'patch': {
      if (r.subresource === 'scale') return `scale ${kind(r, false)} ${r.name}${nsFlag(r)}${body.replicas !== undefined ? ` --replicas=${body.replicas}` : ''}${dry}`;
      if (body.restart) return `rollout restart ${kind(r, false)} ${r.name}${nsFlag(r)}${dry}`;
      if (r.patchType === 'apply') return `apply ${kind(r, false)} ${r.name}${nsFlag(r)}${subFlag} --server-side${r.fieldManager ? ` --field-manager=${r.fieldManager}` : ''}${dry}`;
      return `patch ${kind(r, false)} ${r.name}${nsFlag(r)}${subFlag}${r.patchType ? ` --type=${r.patchType}` : ''}${dry}`;
    }
    case 'delete':
      return `delete ${kind(r, false)} ${r.name}${nsFlag(r)}${dry}`;
    case 'deletecollection':
      return `delete ${kind(r, true)}${nsFlag(r)}${sel || ' --all'}${dry}`;
    case 'connect': {
      if (r.exec) {
        const e = r.exec;
        const flags = `${e.stdin ? 'i' : ''}${e.tty ? 't' : ''}`;
        const verb = r.subresource === 'attach' ? 'attach' : 'exec';
        const cmd = verb === 'exec' && e.command.length ? ` -- ${e.command.map(shellWord).join(' ')}` : '';
        return `${verb}${flags ? ` -${flags}` : ''} ${r.name}${nsFlag(r)}${e.container ? ` -c ${e.container}` : ''}${cmd}`;
      }
      if (r.ports) return `port-forward ${singular(r.resource)}/${r.name}${nsFlag(r)}${r.ports.length ? ` ${r.ports.join(' ')}` : ''}`;
      return `proxy ${kind(r, false)} ${r.name}${nsFlag(r)}${r.subresource.slice('proxy'.length)}`;
    }
  }
}

/** `k8s:<resource>/<namespace>/<name>` for what the request touches; a collection is `<name>` `*`. */
export function kubeTargets(r: KubeRequest, body: BodyFacts = {}): string[] {
  if (!r.resource) return [];
  const res = r.group ? `${r.resource}.${r.group}` : r.resource;
  const name = r.name || (r.verb === 'create' ? (body.name ?? '') : '');
  if (name) return [`k8s:${res}/${r.namespace}/${name}`];
  if (r.verb === 'deletecollection') return [`k8s:${res}/${r.namespace}/*`];
  return [];
}

/** The command's detail: everything the URL says, for search, guardrails and the app. */
export function kubeDetail(r: KubeRequest): { [key: string]: string | boolean | string[] | null } {
  const d: { [key: string]: string | boolean | string[] | null } = {
    verb: r.verb,
    group: r.group,
    version: r.version,
    resource: r.resource,
    namespace: r.namespace,
    name: r.name,
    subresource: r.subresource,
    dryRun: r.dryRun,
    fieldManager: r.fieldManager,
    patchType: r.patchType,
    path: r.path,
  };
  if (r.exec) Object.assign(d, { command: r.exec.command, container: r.exec.container, stdin: r.exec.stdin, tty: r.exec.tty });
  if (r.logs) Object.assign(d, { container: r.logs.container, follow: r.logs.follow });
  if (r.ports) d.ports = r.ports;
  return d;
}

/** The verb a guardrail matches: kubectl's words for the connect subresources (`exec`, `port-forward`, `logs`). */
export function policyVerb(r: KubeRequest): string {
  if (r.subresource === 'exec' || r.subresource === 'attach') return r.subresource;
  if (r.subresource === 'portforward') return 'port-forward';
  if (r.subresource === 'log') return 'logs';
  if (r.subresource === 'scale' && (r.verb === 'patch' || r.verb === 'update')) return 'scale';
  return r.verb;
}
