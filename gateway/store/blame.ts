/**
 * Object blame: every recorded command that touched one object (a table, a file on an SSH host,
 * an HTTP path, a Kubernetes object), across sessions, runs and identities, oldest first, with
 * the model call that caused it and the change where the record holds one.
 */
import type { Db } from './db';
import { FlightlogError } from '../core/errors';
import type { CommandKind, Json } from '../common/types';
import { parseJsonText, type CommandRow } from './rows';
import { stripSystemReminders } from './runs';
import { agentEdits, type AgentFileEdit } from './agent-edits';
import type { BlameCause, BlameChange, BlameEntry, BlameReport, BlameTarget } from '../common/api-types';

export type { BlameCause, BlameChange, BlameEntry, BlameReport, BlameTarget };






const usage = 'TARGET is table:SCHEMA.NAME (or just NAME), file:HOST:/PATH, http:CONNECTION:/PATH (globs allowed) or k8s:KIND/NAMESPACE/NAME';

/** Parses what a user types; a bare word is a table, as agents and reviewers name tables. */
export function parseBlameTarget(input: string): BlameTarget {
  const raw = input.trim();
  if (!raw) throw new FlightlogError('E_PARAM', `empty target (${usage})`);
  const colon = raw.indexOf(':');
  const scheme = colon > 0 ? raw.slice(0, colon).toLowerCase() : '';
  const rest = colon > 0 ? raw.slice(colon + 1) : raw;
  if (scheme === 'table' || (!scheme && /^[\p{L}_][\p{L}\p{N}_$]*(\.[\p{L}_][\p{L}\p{N}_$]*)?$/u.test(raw))) {
    const parts = rest.toLowerCase().split('.');
    if (parts.length === 1 && parts[0]) return { type: 'table', schema: 'public', name: parts[0] };
    if (parts.length === 2 && parts[0] && parts[1]) return { type: 'table', schema: parts[0], name: parts[1] };
    throw new FlightlogError('E_PARAM', `bad table "${rest}" (${usage})`);
  }
  if (scheme === 'file' || scheme === 'http') {
    const i = rest.indexOf(':');
    const host = i > 0 ? rest.slice(0, i) : '';
    const p = i > 0 ? rest.slice(i + 1) : '';
    if (!host || !p.startsWith('/')) throw new FlightlogError('E_PARAM', `bad ${scheme} target "${raw}" (${usage})`);
    return scheme === 'file' ? { type: 'file', host, path: p } : { type: 'http', connection: host, pattern: p };
  }
  if (scheme === 'k8s') {
    const parts = rest.split('/');
    if (parts.length !== 3 || parts.some((x) => !x)) throw new FlightlogError('E_PARAM', `bad k8s target "${raw}" (${usage})`);
    return { type: 'k8s', resource: parts[0].toLowerCase(), namespace: parts[1], name: parts[2] };
  }
  throw new FlightlogError('E_PARAM', `unknown target "${raw}" (${usage})`);
}

export function formatBlameTarget(t: BlameTarget): string {
  switch (t.type) {
    case 'table':
      return `table:${t.schema}.${t.name}`;
    case 'file':
      return `file:${t.host}:${t.path}`;
    case 'http':
      return `http:${t.connection}:${t.pattern}`;
    case 'k8s':
      return `k8s:${t.resource}/${t.namespace}/${t.name}`;
  }
}

/** `*` is one path segment, `**` any number; everything else literal. */
export function pathGlob(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Kubernetes resource kinds as kubectl and the API spell them. */
const K8S_PLURAL: Record<string, string> = {
  deployment: 'deployments', deploy: 'deployments', deployments: 'deployments',
  service: 'services', svc: 'services', services: 'services',
  pod: 'pods', po: 'pods', pods: 'pods',
  configmap: 'configmaps', cm: 'configmaps', configmaps: 'configmaps',
  secret: 'secrets', secrets: 'secrets',
  statefulset: 'statefulsets', sts: 'statefulsets', statefulsets: 'statefulsets',
  daemonset: 'daemonsets', ds: 'daemonsets', daemonsets: 'daemonsets',
  job: 'jobs', jobs: 'jobs', cronjob: 'cronjobs', cj: 'cronjobs', cronjobs: 'cronjobs',
  ingress: 'ingresses', ing: 'ingresses', ingresses: 'ingresses',
};
const KUBECTL_WRITES = new Set(['apply', 'edit', 'patch', 'delete', 'scale', 'set', 'rollout', 'replace', 'create', 'label', 'annotate', 'autoscale', 'expose', 'cordon', 'drain', 'taint']);

interface Row extends CommandRow {
  identity: string | null;
  run_id: string | null;
  connection: string;
  protocol: string;
}

const SELECT = `SELECT c.*, s.identity, s.run_id, s.connection, s.protocol FROM commands c JOIN sessions s ON s.id = c.session_id`;

function detailOf(r: Row): Record<string, Json> {
  const d = parseJsonText(r.detail);
  return d && typeof d === 'object' && !Array.isArray(d) ? (d as Record<string, Json>) : {};
}

function urlPath(url: unknown): string | null {
  if (typeof url !== 'string') return null;
  const q = url.search(/[?#]/);
  return q >= 0 ? url.slice(0, q) : url;
}

/** The candidate rows for a target and whether each wrote it; SQL narrows by index, code by meaning. */
function matches(db: Db, t: BlameTarget): Array<{ row: Row; write: boolean; edit?: AgentFileEdit }> {
  const out: Array<{ row: Row; write: boolean; edit?: AgentFileEdit }> = [];
  const WRITE_CLASSES = new Set(['write', 'ddl']);
  if (t.type === 'table') {
    const names = t.schema === 'public' ? [t.name, `public.${t.name}`] : [`${t.schema}.${t.name}`];
    const rows = db
      .prepare(`${SELECT} WHERE c.kind = 'sql' AND c.id IN (SELECT command_id FROM command_targets WHERE target IN (${names.map(() => '?').join(', ')}))`)
      .all(...names) as Row[];
    for (const row of rows) out.push({ row, write: WRITE_CLASSES.has(row.classification ?? '') });
    return out;
  }
  if (t.type === 'file' && t.host === 'local') {
    // the agent's own machine: edits asked for in model replies, found by the path in the reply
    const escaped = t.path.replace(/[\\%_]/g, (ch) => '\\' + ch);
    for (const row of db.prepare(`${SELECT} WHERE c.kind = 'llm' AND c.result LIKE ? ESCAPE '\\' ORDER BY c.id`).iterate(`%${escaped}%`) as IterableIterator<Row>) {
      const result = parseJsonText(row.result);
      const calls = result && typeof result === 'object' && !Array.isArray(result) ? result.toolCalls : undefined;
      const edits = agentEdits(calls).filter((e) => e.path === t.path);
      for (const e of edits) out.push({ row, write: true, edit: e });
    }
    return out;
  }
  if (t.type === 'file') {
    // SFTP records the bare path; shell commands that write files record file:HOST:PATH
    const keys = [t.path.toLowerCase(), `file:${t.host}:${t.path}`.toLowerCase()];
    const rows = db.prepare(`${SELECT} WHERE s.connection = ? AND c.id IN (SELECT command_id FROM command_targets WHERE target IN (?, ?))`).all(t.host, ...keys) as Row[];
    for (const row of rows) {
      const targets = JSON.parse(row.targets) as string[];
      if (row.kind === 'sftp') {
        if (!targets.includes(t.path)) continue; // the index is lower-cased; paths are not
        out.push({ row, write: row.classification === 'write' });
      } else if (targets.includes(`file:${t.host}:${t.path}`)) {
        const files = detailOf(row).files;
        const mine = Array.isArray(files) ? files.find((f) => f && typeof f === 'object' && !Array.isArray(f) && f.path === t.path) : undefined;
        const op = mine && typeof mine === 'object' && !Array.isArray(mine) ? mine.op : 'write';
        out.push({ row, write: op !== 'read' });
      }
    }
    return out;
  }
  if (t.type === 'http') {
    const re = pathGlob(t.pattern);
    for (const row of db.prepare(`${SELECT} WHERE s.connection = ? AND c.kind = 'http' ORDER BY c.id`).iterate(t.connection) as IterableIterator<Row>) {
      const p = urlPath(detailOf(row).url);
      if (p !== null && re.test(p)) out.push({ row, write: row.classification === 'write' });
    }
    return out;
  }
  const plural = K8S_PLURAL[t.resource] ?? t.resource;
  // the Kubernetes listener's own commands name their object in targets: k8s:PLURAL[.GROUP]/NS/NAME
  const group = t.resource.includes('.') ? t.resource : `${plural}.%`;
  const indexed = db
    .prepare(`${SELECT} WHERE c.kind = 'kubectl' AND c.id IN (SELECT command_id FROM command_targets WHERE target = ? OR target LIKE ?) ORDER BY c.id`)
    .all(`k8s:${plural}/${t.namespace}/${t.name}`.toLowerCase(), `k8s:${group}/${t.namespace}/${t.name}`.toLowerCase()) as Row[];
  for (const row of indexed) out.push({ row, write: row.classification === 'write' });
  const api = new RegExp(`^/apis?/(?:[^/]+/)*namespaces/${escapeRe(t.namespace)}/${escapeRe(plural)}/${escapeRe(t.name)}(?:/.*)?$`);
  const like = `%${t.name}%`;
  const rows = db.prepare(`${SELECT} WHERE (c.kind = 'http' AND json_extract(c.detail, '$.url') LIKE ?) OR (c.kind IN ('kubectl', 'shell', 'exec') AND c.text LIKE '%kubectl%' AND c.text LIKE ?)`).all(like, like) as Row[];
  for (const row of rows) {
    if (row.kind === 'http') {
      const p = urlPath(detailOf(row).url);
      if (p !== null && api.test(p)) out.push({ row, write: row.classification === 'write' });
      continue;
    }
    const verb = kubectlTouches(row.text, t.resource, plural, t.namespace, t.name);
    if (verb) out.push({ row, write: KUBECTL_WRITES.has(verb) });
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The kubectl verb when a command line names this object (`deployment/web` or `deployment web`) in its namespace. */
export function kubectlTouches(text: string, resource: string, plural: string, namespace: string, name: string): string | null {
  const words = text.split(/\s+/).filter(Boolean);
  const k = words.findIndex((w) => w === 'kubectl' || w.endsWith('/kubectl'));
  if (k < 0) return null;
  const args = words.slice(k + 1);
  let ns = 'default';
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-n' || a === '--namespace') ns = args[++i] ?? ns;
    else if (a.startsWith('--namespace=')) ns = a.slice(12);
    else if (a.startsWith('-n') && a.length > 2 && !a.startsWith('--')) ns = a.slice(2);
    else if (!a.startsWith('-')) rest.push(a);
  }
  if (ns !== namespace) return null;
  const kinds = new Set(Object.entries(K8S_PLURAL).filter(([, p]) => p === plural).map(([k2]) => k2));
  kinds.add(resource);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i].toLowerCase();
    const slash = w.indexOf('/');
    const hit = slash > 0 ? kinds.has(w.slice(0, slash).split('.')[0]) && rest[i].slice(slash + 1) === name : kinds.has(w.split('.')[0]) && rest[i + 1] === name;
    if (hit) return rest[0] === 'rollout' || rest[0] === 'set' ? rest[0] : (rest[0] ?? null);
  }
  return null;
}

function changeOf(row: Row, target: BlameTarget): BlameChange | null {
  const result = parseJsonText(row.result);
  const r = result && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, Json>) : null;
  if (row.kind === 'sql') {
    if (!r) return null;
    return { rowCount: typeof r.rowCount === 'number' ? r.rowCount : null, tag: typeof r.tag === 'string' ? r.tag : null };
  }
  const diff = r?.diff;
  if (diff && typeof diff === 'object' && !Array.isArray(diff)) {
    if (typeof diff.unavailable === 'string') return { unavailable: diff.unavailable };
    if ('after' in diff) return { before: typeof diff.before === 'string' ? diff.before : null, after: typeof diff.after === 'string' ? diff.after : null };
  }
  // the Kubernetes listener keeps a mutation's object before and after in its result
  if (target.type === 'k8s' && row.kind === 'kubectl' && r && ('before' in r || 'after' in r)) {
    const text = (v: Json | undefined) => (v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v, null, 2));
    return { before: text(r.before), after: text(r.after) };
  }
  // a Kubernetes before/after when the recording kept one in the detail
  const d = detailOf(row);
  const k = d.k8s ?? d.kubernetes;
  if (target.type === 'k8s' && k && typeof k === 'object' && !Array.isArray(k) && ('before' in k || 'after' in k)) {
    const text = (v: Json | undefined) => (v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v, null, 2));
    return { before: text(k.before), after: text(k.after) };
  }
  return null;
}

/** Every command that touched the target, oldest first; `since` flags the first write after it. */
export function blame(db: Db, input: string, opts: { since?: string } = {}): BlameReport {
  const target = parseBlameTarget(input);
  const found = matches(db, target);
  const seen = new Set<number>();
  const unique = found.filter((m) => m.edit !== undefined || (seen.has(m.row.id) ? false : (seen.add(m.row.id), true)));
  unique.sort((a, b) => a.row.started_at.localeCompare(b.row.started_at) || a.row.id - b.row.id);
  const causeIds = [...new Set(unique.map((m) => m.row.caused_by).filter((x): x is number => x !== null))];
  const causes = new Map<number, BlameCause>();
  const causeStmt = db.prepare('SELECT id, session_id, idx, text FROM commands WHERE id = ?');
  for (const id of causeIds) {
    const c = causeStmt.get(id) as { id: number; session_id: string; idx: number; text: string } | undefined;
    if (c) causes.set(id, { commandId: c.id, sessionId: c.session_id, index: c.idx, text: stripSystemReminders(c.text) });
  }
  const since = opts.since ?? null;
  let flagged = false;
  const entries = unique.map(({ row, write, edit }): BlameEntry => {
    // a refused or failed write changed nothing, so it is not the one that broke things
    const first = since !== null && !flagged && write && row.started_at >= since && (row.status === 'ok' || row.status === 'running');
    if (first) flagged = true;
    return {
      commandId: row.id,
      at: row.started_at,
      identity: row.identity,
      run: row.run_id,
      sessionId: row.session_id,
      index: row.idx,
      connection: row.connection,
      protocol: row.protocol,
      kind: row.kind as CommandKind,
      access: write ? 'write' : 'read',
      // an edit on the agent's machine is the model reply's own tool call: it is its own cause
      text: edit ? `${edit.tool} ${edit.path}` : row.text,
      status: row.status,
      error: row.error,
      cause: edit ? { commandId: row.id, sessionId: row.session_id, index: row.idx, text: stripSystemReminders(row.text) } : row.caused_by !== null ? (causes.get(row.caused_by) ?? null) : null,
      change: edit ? { before: edit.before, after: edit.after } : changeOf(row, target),
      firstWriteSince: first,
    };
  });
  return { target: formatBlameTarget(target), since, entries };
}
