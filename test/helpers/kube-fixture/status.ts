/** `Status` objects: the shape every Kubernetes API error (and a few successes) takes on the wire. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ reason?: string; message: string; field?: string }>; uid?: string };
  code: number;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  406: 'NotAcceptable', 409: 'Conflict', 410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 500: 'InternalError',
};

export class StatusError extends Error {
  constructor(public readonly status: KubeStatus) {
    super(status.message);
  }
}

export function failure(code: number, message: string, extra: Partial<KubeStatus> = {}): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: REASONS[code] ?? 'Unknown', code, ...extra };
}

export function success(details: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}

export function fail(code: number, message: string, extra: Partial<KubeStatus> = {}): never {
  throw new StatusError(failure(code, message, extra));
}

/** The resource's name as Kubernetes errors spell it: `deployments.apps`, `pods`. */
function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export function notFound(resource: string, group: string, name: string): never {
  fail(404, `${qualified(resource, group)} "${name}" not found`, { details: { name, group: group || undefined, kind: resource } });
}

export function alreadyExists(resource: string, group: string, name: string): never {
  fail(409, `${qualified(resource, group)} "${name}" already exists`, { reason: 'AlreadyExists', details: { name, group: group || undefined, kind: resource } });
}

export function conflict(resource: string, group: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): never {
  fail(409, `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`, { reason: 'Conflict', details: { name, group: group || undefined, kind: resource } });
}

export function invalid(kind: string, group: string, name: string, causes: Array<{ field: string; message: string }>): never {
  const msg = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  fail(422, `${kind}${group ? '.' + group : ''} "${name}" is invalid: ${msg}`, {
    details: { name, group: group || undefined, kind, causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })) },
  });
}
