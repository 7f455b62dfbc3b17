/**
 * Decodes the Kubernetes protobuf request bodies kubectl sends (`kubectl create configmap|secret|
 * deployment|namespace|service|serviceaccount` post `application/vnd.kubernetes.protobuf`): the
 * `k8s\0` magic, a runtime.Unknown envelope (TypeMeta, raw object), then the object in protobuf.
 * The field numbers below are the published wire schema (k8s.io/api generated.proto) for the
 * kinds and fields the fixture serves; a field missing here fails the request with 415 when it
 * carries a value, so a gap shows up as a clear error instead of a silently dropped value.
 * Zero values are dropped like Go's `omitempty`, except for pointer fields (`ptr`), where an
 * explicit 0 or false is meaningful (`replicas: 0`).
 */
import { fail } from './status';

type Scalar = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'intstr' | 'quantity';
interface Field {
  name: string;
  type: Scalar | `map:${'string' | 'bytes' | 'quantity'}` | string;
  repeated?: boolean;
  ptr?: boolean;
  /** an embedded Go struct: its fields appear in the parent's JSON */
  inline?: boolean;
}
type Message = Record<number, Field>;

const f = (name: string, type: Field['type'], extra: Partial<Field> = {}): Field => ({ name, type, ...extra });
const rep = { repeated: true };
const ptr = { ptr: true };

const SCHEMA: Record<string, Message> = {
  ObjectMeta: {
    1: f('name', 'string'), 2: f('generateName', 'string'), 3: f('namespace', 'string'), 4: f('selfLink', 'string'), 5: f('uid', 'string'),
    6: f('resourceVersion', 'string'), 7: f('generation', 'int'), 8: f('creationTimestamp', 'time'), 9: f('deletionTimestamp', 'time'),
    10: f('deletionGracePeriodSeconds', 'int', ptr), 11: f('labels', 'map:string'), 12: f('annotations', 'map:string'),
    13: f('ownerReferences', 'OwnerReference', rep), 14: f('finalizers', 'string', rep),
  },
  OwnerReference: { 1: f('kind', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('controller', 'bool', ptr), 7: f('blockOwnerDeletion', 'bool', ptr) },
  LabelSelector: { 1: f('matchLabels', 'map:string'), 2: f('matchExpressions', 'LabelSelectorRequirement', rep) },
  LabelSelectorRequirement: { 1: f('key', 'string'), 2: f('operator', 'string'), 3: f('values', 'string', rep) },
  Namespace: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'NamespaceSpec'), 3: f('status', 'NamespaceStatus') },
  NamespaceSpec: { 1: f('finalizers', 'string', rep) },
  NamespaceStatus: { 1: f('phase', 'string') },
  ConfigMap: { 1: f('metadata', 'ObjectMeta'), 2: f('data', 'map:string'), 3: f('binaryData', 'map:bytes'), 4: f('immutable', 'bool', ptr) },
  Secret: { 1: f('metadata', 'ObjectMeta'), 2: f('data', 'map:bytes'), 3: f('type', 'string'), 4: f('stringData', 'map:string'), 5: f('immutable', 'bool', ptr) },
  ServiceAccount: { 1: f('metadata', 'ObjectMeta'), 2: f('secrets', 'ObjectReference', rep), 3: f('imagePullSecrets', 'LocalObjectReference', rep), 4: f('automountServiceAccountToken', 'bool', ptr) },
  ObjectReference: { 1: f('kind', 'string'), 2: f('namespace', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('resourceVersion', 'string'), 7: f('fieldPath', 'string') },
  LocalObjectReference: { 1: f('name', 'string') },
  Service: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'ServiceSpec'), 3: f('status', 'ServiceStatus') },
  ServiceSpec: {
    1: f('ports', 'ServicePort', rep), 2: f('selector', 'map:string'), 3: f('clusterIP', 'string'), 18: f('clusterIPs', 'string', rep), 4: f('type', 'string'),
    5: f('externalIPs', 'string', rep), 7: f('sessionAffinity', 'string'), 8: f('loadBalancerIP', 'string'), 10: f('externalName', 'string'),
    11: f('externalTrafficPolicy', 'string'), 17: f('ipFamilyPolicy', 'string', ptr), 19: f('ipFamilies', 'string', rep), 22: f('internalTrafficPolicy', 'string', ptr),
  },
  ServicePort: { 1: f('name', 'string'), 2: f('protocol', 'string'), 6: f('appProtocol', 'string', ptr), 3: f('port', 'int'), 4: f('targetPort', 'intstr'), 5: f('nodePort', 'int') },
  ServiceStatus: { 1: f('loadBalancer', 'LoadBalancerStatus') },
  LoadBalancerStatus: {},
  Pod: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'PodSpec'), 3: f('status', 'PodStatus') },
  PodStatus: { 1: f('phase', 'string') },
  PodTemplateSpec: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'PodSpec') },
  PodSpec: {
    1: f('volumes', 'Volume', rep), 20: f('initContainers', 'Container', rep), 2: f('containers', 'Container', rep), 3: f('restartPolicy', 'string'),
    4: f('terminationGracePeriodSeconds', 'int', ptr), 5: f('activeDeadlineSeconds', 'int', ptr), 6: f('dnsPolicy', 'string'), 7: f('nodeSelector', 'map:string'),
    8: f('serviceAccountName', 'string'), 9: f('serviceAccount', 'string'), 21: f('automountServiceAccountToken', 'bool', ptr), 10: f('nodeName', 'string'),
    11: f('hostNetwork', 'bool'), 14: f('securityContext', 'PodSecurityContext'), 15: f('imagePullSecrets', 'LocalObjectReference', rep),
    16: f('hostname', 'string'), 17: f('subdomain', 'string'), 19: f('schedulerName', 'string'), 22: f('tolerations', 'Toleration', rep),
    24: f('priorityClassName', 'string'), 30: f('enableServiceLinks', 'bool', ptr),
  },
  PodSecurityContext: { 2: f('runAsUser', 'int', ptr), 6: f('runAsGroup', 'int', ptr), 3: f('runAsNonRoot', 'bool', ptr), 5: f('fsGroup', 'int', ptr) },
  SecurityContext: { 2: f('privileged', 'bool', ptr), 4: f('runAsUser', 'int', ptr), 8: f('runAsGroup', 'int', ptr), 5: f('runAsNonRoot', 'bool', ptr), 6: f('readOnlyRootFilesystem', 'bool', ptr), 7: f('allowPrivilegeEscalation', 'bool', ptr) },
  Toleration: { 1: f('key', 'string'), 2: f('operator', 'string'), 3: f('value', 'string'), 4: f('effect', 'string'), 5: f('tolerationSeconds', 'int', ptr) },
  Container: {
    1: f('name', 'string'), 2: f('image', 'string'), 3: f('command', 'string', rep), 4: f('args', 'string', rep), 5: f('workingDir', 'string'),
    6: f('ports', 'ContainerPort', rep), 19: f('envFrom', 'EnvFromSource', rep), 7: f('env', 'EnvVar', rep), 8: f('resources', 'ResourceRequirements'),
    9: f('volumeMounts', 'VolumeMount', rep), 10: f('livenessProbe', 'Probe'), 11: f('readinessProbe', 'Probe'), 22: f('startupProbe', 'Probe'),
    13: f('terminationMessagePath', 'string'), 20: f('terminationMessagePolicy', 'string'), 14: f('imagePullPolicy', 'string'),
    15: f('securityContext', 'SecurityContext'), 16: f('stdin', 'bool'), 17: f('stdinOnce', 'bool'), 18: f('tty', 'bool'),
  },
  ContainerPort: { 1: f('name', 'string'), 2: f('hostPort', 'int'), 3: f('containerPort', 'int'), 4: f('protocol', 'string'), 5: f('hostIP', 'string') },
  EnvVar: { 1: f('name', 'string'), 2: f('value', 'string'), 3: f('valueFrom', 'EnvVarSource') },
  EnvVarSource: { 1: f('fieldRef', 'ObjectFieldSelector'), 3: f('configMapKeyRef', 'KeySelector'), 4: f('secretKeyRef', 'KeySelector') },
  ObjectFieldSelector: { 1: f('apiVersion', 'string'), 2: f('fieldPath', 'string') },
  KeySelector: { 1: f('', 'LocalObjectReference', { inline: true }), 2: f('key', 'string'), 3: f('optional', 'bool', ptr) },
  EnvFromSource: { 1: f('prefix', 'string'), 2: f('configMapRef', 'EnvSource'), 3: f('secretRef', 'EnvSource') },
  EnvSource: { 1: f('', 'LocalObjectReference', { inline: true }), 2: f('optional', 'bool', ptr) },
  ResourceRequirements: { 1: f('limits', 'map:quantity'), 2: f('requests', 'map:quantity') },
  VolumeMount: { 1: f('name', 'string'), 2: f('readOnly', 'bool'), 3: f('mountPath', 'string'), 4: f('subPath', 'string') },
  Volume: { 1: f('name', 'string'), 2: f('', 'VolumeSource', { inline: true }) },
  VolumeSource: { 2: f('emptyDir', 'EmptyDirVolumeSource'), 6: f('secret', 'SecretVolumeSource'), 19: f('configMap', 'ConfigMapVolumeSource') },
  EmptyDirVolumeSource: { 1: f('medium', 'string'), 2: f('sizeLimit', 'quantity') },
  SecretVolumeSource: { 1: f('secretName', 'string'), 2: f('items', 'KeyToPath', rep), 3: f('defaultMode', 'int', ptr), 4: f('optional', 'bool', ptr) },
  ConfigMapVolumeSource: { 1: f('', 'LocalObjectReference', { inline: true }), 2: f('items', 'KeyToPath', rep), 3: f('defaultMode', 'int', ptr), 4: f('optional', 'bool', ptr) },
  KeyToPath: { 1: f('key', 'string'), 2: f('path', 'string'), 3: f('mode', 'int', ptr) },
  Probe: { 1: f('', 'ProbeHandler', { inline: true }), 2: f('initialDelaySeconds', 'int'), 3: f('timeoutSeconds', 'int'), 4: f('periodSeconds', 'int'), 5: f('successThreshold', 'int'), 6: f('failureThreshold', 'int') },
  ProbeHandler: { 1: f('exec', 'ExecAction'), 2: f('httpGet', 'HTTPGetAction'), 3: f('tcpSocket', 'TCPSocketAction') },
  ExecAction: { 1: f('command', 'string', rep) },
  HTTPGetAction: { 1: f('path', 'string'), 2: f('port', 'intstr'), 3: f('host', 'string'), 4: f('scheme', 'string') },
  TCPSocketAction: { 1: f('port', 'intstr'), 2: f('host', 'string') },
  Deployment: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'DeploymentSpec'), 3: f('status', 'DeploymentStatus') },
  DeploymentSpec: {
    1: f('replicas', 'int', ptr), 2: f('selector', 'LabelSelector'), 3: f('template', 'PodTemplateSpec'), 4: f('strategy', 'DeploymentStrategy'),
    5: f('minReadySeconds', 'int'), 6: f('revisionHistoryLimit', 'int', ptr), 7: f('paused', 'bool'), 9: f('progressDeadlineSeconds', 'int', ptr),
  },
  DeploymentStrategy: { 1: f('type', 'string'), 2: f('rollingUpdate', 'RollingUpdateDeployment') },
  RollingUpdateDeployment: { 1: f('maxUnavailable', 'intstr'), 2: f('maxSurge', 'intstr') },
  DeploymentStatus: { 1: f('observedGeneration', 'int'), 2: f('replicas', 'int') },
  ReplicaSet: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'ReplicaSetSpec'), 3: f('status', 'ReplicaSetStatus') },
  ReplicaSetSpec: { 1: f('replicas', 'int', ptr), 4: f('minReadySeconds', 'int'), 2: f('selector', 'LabelSelector'), 3: f('template', 'PodTemplateSpec') },
  ReplicaSetStatus: { 1: f('replicas', 'int') },
  SelfSubjectAccessReview: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'SelfSubjectAccessReviewSpec'), 3: f('status', 'SubjectAccessReviewStatus') },
  SubjectAccessReviewStatus: { 1: f('allowed', 'bool'), 4: f('denied', 'bool'), 2: f('reason', 'string'), 3: f('evaluationError', 'string') },
  SelfSubjectAccessReviewSpec: { 1: f('resourceAttributes', 'ResourceAttributes'), 2: f('nonResourceAttributes', 'NonResourceAttributes') },
  ResourceAttributes: { 1: f('namespace', 'string'), 2: f('verb', 'string'), 3: f('group', 'string'), 4: f('version', 'string'), 5: f('resource', 'string'), 6: f('subresource', 'string'), 7: f('name', 'string') },
  NonResourceAttributes: { 1: f('path', 'string'), 2: f('verb', 'string') },
  SelfSubjectRulesReview: { 1: f('metadata', 'ObjectMeta'), 2: f('spec', 'SelfSubjectRulesReviewSpec'), 3: f('status', 'SubjectRulesReviewStatus') },
  SubjectRulesReviewStatus: { 3: f('incomplete', 'bool'), 4: f('evaluationError', 'string') },
  SelfSubjectReview: { 1: f('metadata', 'ObjectMeta'), 2: f('status', 'SelfSubjectReviewStatus') },
  SelfSubjectReviewStatus: { 1: f('userInfo', 'UserInfo') },
  UserInfo: { 1: f('username', 'string'), 2: f('uid', 'string'), 3: f('groups', 'string', rep) },
  SelfSubjectRulesReviewSpec: { 1: f('namespace', 'string') },
  // generic envelopes
  Unknown: { 1: f('typeMeta', 'TypeMeta'), 2: f('raw', 'bytes'), 3: f('contentEncoding', 'string'), 4: f('contentType', 'string') },
  TypeMeta: { 1: f('apiVersion', 'string'), 2: f('kind', 'string') },
  Time: { 1: f('seconds', 'int'), 2: f('nanos', 'int') },
  IntOrString: { 1: f('type', 'int'), 2: f('intVal', 'int'), 3: f('strVal', 'string') },
  Quantity: { 1: f('string', 'string') },
  MapEntry: { 1: f('key', 'string'), 2: f('value', 'bytes') },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) fail(400, 'protobuf body is truncated');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length) fail(400, 'protobuf body is truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else fail(400, `protobuf wire type ${wire} is not supported`);
  }
}

type Raw = Map<number, Array<bigint | Buffer>>;

function fields(buf: Buffer): Raw {
  const r = new Reader(buf);
  const out: Raw = new Map();
  while (!r.done()) {
    const tag = Number(r.varint());
    const no = tag >> 3;
    const wire = tag & 7;
    let v: bigint | Buffer;
    if (wire === 0) v = r.varint();
    else if (wire === 2) v = r.bytes();
    else {
      r.skip(wire);
      continue;
    }
    const list = out.get(no) ?? [];
    list.push(v);
    out.set(no, list);
  }
  return out;
}

const signed = (v: bigint) => Number(BigInt.asIntN(64, v));

function scalar(type: string, v: bigint | Buffer): unknown {
  switch (type) {
    case 'string': return (v as Buffer).toString('utf8');
    case 'bytes': return (v as Buffer).toString('base64');
    case 'int': return signed(v as bigint);
    case 'bool': return (v as bigint) !== 0n;
    case 'time': {
      const t = decode('Time', v as Buffer) as { seconds?: number };
      return t.seconds ? new Date(t.seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : null;
    }
    case 'intstr': {
      const x = decode('IntOrString', v as Buffer) as { type?: number; intVal?: number; strVal?: string };
      return x.type === 1 ? x.strVal ?? '' : x.intVal ?? 0;
    }
    case 'quantity': return (decode('Quantity', v as Buffer) as { string?: string }).string ?? '0';
    default: return decode(type, v as Buffer);
  }
}

const isZero = (v: unknown) => v === '' || v === 0 || v === false || v === null;

function decode(message: string, buf: Buffer): Record<string, unknown> {
  const schema = SCHEMA[message];
  if (!schema) fail(415, `the fixture cannot decode protobuf message ${message}; send JSON`);
  const out: Record<string, unknown> = {};
  for (const [no, values] of fields(buf)) {
    const fd = schema[no];
    if (!fd) {
      // gogo-protobuf writes every non-pointer field, set or not: an unlisted zero value is no loss.
      if (values.every((v) => (typeof v === 'bigint' ? v === 0n : v.length === 0))) continue;
      fail(415, `the fixture cannot decode field ${no} of protobuf message ${message}; send JSON`);
    }
    if (fd.type.startsWith('map:')) {
      const m: Record<string, unknown> = {};
      for (const v of values) {
        const e = fields(v as Buffer);
        const key = (e.get(1)?.[0] as Buffer | undefined)?.toString('utf8') ?? '';
        const val = (e.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0);
        m[key] = scalar(fd.type.slice(4) === 'string' ? 'string' : fd.type.slice(4), val);
      }
      out[fd.name] = { ...((out[fd.name] as object) ?? {}), ...m };
      continue;
    }
    if (fd.inline) {
      for (const v of values) Object.assign(out, decode(fd.type, v as Buffer));
      continue;
    }
    // Packed repeated varints are not used by the fields listed; a repeated field is one value per tag.
    const decoded = values.map((v) => scalar(fd.type, v));
    if (fd.repeated) out[fd.name] = [...((out[fd.name] as unknown[]) ?? []), ...decoded];
    else {
      const v = decoded[decoded.length - 1];
      if (fd.ptr || !isZero(v)) out[fd.name] = v;
    }
  }
  return out;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** A `application/vnd.kubernetes.protobuf` body as the JSON object it encodes. */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) fail(400, 'protobuf body does not start with the k8s\\0 magic');
  const env = decode('Unknown', body.subarray(4)) as { typeMeta?: { apiVersion?: string; kind?: string }; raw?: string; contentEncoding?: string };
  const kind = env.typeMeta?.kind ?? '';
  if (env.contentEncoding) fail(415, `protobuf content encoding ${env.contentEncoding} is not supported`);
  const obj = decode(kind, Buffer.from(env.raw ?? '', 'base64'));
  return { apiVersion: env.typeMeta?.apiVersion, kind, ...obj };
}
