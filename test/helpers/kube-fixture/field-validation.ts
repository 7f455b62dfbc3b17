/**
 * `fieldValidation=Strict` (what kubectl sends by default): a field the kind does not have is a
 * 400 BadRequest `strict decoding error: unknown field "…"`, as the API server's strict decoder
 * answers. The fixture knows the fields of the envelope, metadata, the served kinds' top level,
 * a Deployment's spec and a container, which is where a typo in a manifest usually lands.
 */
import type { KubeObject, ResourceDef } from './resources';
import { fail } from './status';

const set = (s: string) => new Set(s.split(/\s+/).filter(Boolean));

const METADATA = set('name generateName namespace selfLink uid resourceVersion generation creationTimestamp deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences finalizers managedFields');
const TOP: Record<string, Set<string>> = {
  Namespace: set('spec status'),
  Pod: set('spec status'),
  Service: set('spec status'),
  Deployment: set('spec status'),
  ReplicaSet: set('spec status'),
  ConfigMap: set('data binaryData immutable'),
  Secret: set('data stringData type immutable'),
  ServiceAccount: set('secrets imagePullSecrets automountServiceAccountToken'),
};
const DEPLOYMENT_SPEC = set('replicas selector template strategy minReadySeconds revisionHistoryLimit paused progressDeadlineSeconds');
const CONTAINER = set(`name image command args workingDir ports envFrom env resources resizePolicy restartPolicy restartPolicyRules
  volumeMounts volumeDevices livenessProbe readinessProbe startupProbe lifecycle terminationMessagePath terminationMessagePolicy
  imagePullPolicy securityContext stdin stdinOnce tty`);

function unknown(obj: Record<string, unknown> | undefined, known: Set<string>, prefix: string): string[] {
  if (!obj || typeof obj !== 'object') return [];
  return Object.keys(obj).filter((k) => !known.has(k)).map((k) => `${prefix}${k}`);
}

export function checkFields(def: ResourceDef, obj: KubeObject, mode: string | null): void {
  if (mode !== 'Strict') return;
  const top = TOP[def.kind];
  if (!top) return;
  const o = obj as unknown as Record<string, unknown>;
  const found = [
    ...unknown(o, new Set([...top, 'apiVersion', 'kind', 'metadata']), ''),
    ...unknown(obj.metadata as Record<string, unknown>, METADATA, 'metadata.'),
  ];
  const spec = o.spec as Record<string, unknown> | undefined;
  if (def.kind === 'Deployment') found.push(...unknown(spec, DEPLOYMENT_SPEC, 'spec.'));
  const podSpec = (def.kind === 'Pod' ? spec : (spec?.template as Record<string, unknown> | undefined)?.spec) as Record<string, unknown> | undefined;
  const where = def.kind === 'Pod' ? 'spec' : 'spec.template.spec';
  for (const list of ['containers', 'initContainers'] as const) {
    const cs = podSpec?.[list];
    if (Array.isArray(cs)) cs.forEach((c, i) => found.push(...unknown(c as Record<string, unknown>, CONTAINER, `${where}.${list}[${i}].`)));
  }
  if (found.length) {
    fail(400, `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${found.map((f) => `unknown field "${f}"`).join(', ')}`);
  }
}
