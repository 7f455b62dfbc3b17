/**
 * Store rows and the views the control API, the CLI and bundles show of them: one mapping,
 * so a bundle reads exactly like the live store.
 */
import type { CommandView, FindingView, SessionDetail, SessionSummary } from '../common/api-types';
import type { CommandKind, CommandStatus, Direction, Json, Protocol, SessionStatus } from '../common/types';
import type { CommandFacts, FindingFacts } from './chain';

/** A session as a record of its own: the detail without commands and findings. */
export type SessionRecord = Omit<SessionDetail, 'commands' | 'findings'>;

export interface SessionRow {
  id: string;
  identity: string | null;
  connection: string;
  protocol: string;
  run_id: string | null;
  client_addr: string | null;
  meta: string;
  started_at: string;
  started_us: number;
  ended_at: string | null;
  status: string;
  end_reason: string | null;
  event_count: number;
  command_count: number;
  finding_count: number;
  last_hash: string | null;
  seal: string | null;
  seal_key: string | null;
}

export interface CommandRow {
  id: number;
  session_id: string;
  idx: number;
  kind: string;
  text: string;
  classification: string | null;
  targets: string;
  status: string;
  started_at: string;
  started_us: number;
  ended_us: number | null;
  start_seq: number | null;
  end_seq: number | null;
  detail: string | null;
  result: string | null;
  error: string | null;
  caused_by: number | null;
}

export interface FindingRow {
  id: number;
  session_id: string | null;
  command_id: number | null;
  event_seq: number | null;
  category: string;
  kind: string;
  fp: string | null;
  direction: string;
  masked_live: number;
  detail: string | null;
  created_at: string;
  /** joined from the command, where the query asks for it */
  command_index?: number | null;
}

export function parseJsonText(text: string | null): Json | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

export function sessionRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    identity: r.identity,
    connection: r.connection,
    protocol: r.protocol as Protocol,
    run: r.run_id,
    clientAddr: r.client_addr,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    durationMs: r.ended_at ? Math.max(0, Date.parse(r.ended_at) - Date.parse(r.started_at)) : null,
    status: r.status as SessionStatus,
    endReason: r.end_reason,
    eventCount: r.event_count,
    commandCount: r.command_count,
    findingCount: r.finding_count,
    sealed: r.seal !== null,
    meta: parseJsonText(r.meta) ?? {},
    seal: r.seal,
    sealKey: r.seal_key,
    lastHash: r.last_hash,
  };
}

export function commandView(r: CommandRow, caused: number[]): CommandView {
  return {
    id: r.id,
    sessionId: r.session_id,
    index: r.idx,
    kind: r.kind as CommandKind,
    text: r.text,
    classification: r.classification,
    targets: JSON.parse(r.targets) as string[],
    status: r.status as CommandStatus,
    startedAt: r.started_at,
    startUs: r.started_us,
    endUs: r.ended_us,
    durationMs: r.ended_us === null ? null : (r.ended_us - r.started_us) / 1000,
    startSeq: r.start_seq,
    endSeq: r.end_seq,
    detail: parseJsonText(r.detail),
    result: parseJsonText(r.result),
    error: r.error,
    causedBy: r.caused_by,
    caused,
  };
}

export function findingView(r: FindingRow): FindingView {
  return {
    id: r.id,
    sessionId: r.session_id,
    commandId: r.command_id,
    eventSeq: r.event_seq,
    category: r.category as FindingView['category'],
    kind: r.kind,
    fp: r.fp,
    direction: r.direction as Direction,
    seenByAgent: r.direction === 'upstream→client',
    maskedLive: r.masked_live === 1,
    detail: parseJsonText(r.detail),
    createdAt: r.created_at,
    ...(r.command_index !== undefined ? { commandIndex: r.command_index } : {}),
  };
}


/** One stored event row, exactly as the hash chain covers it. */
export interface EventRow {
  seq: number;
  t_us: number;
  wall: string;
  kind: string;
  direction: string;
  command_id: number | null;
  /** the stored (masked) JSON text */
  data: string;
  hash: string;
}

export function sessionSummary(r: SessionRow): SessionSummary {
  const { meta: _meta, seal: _seal, sealKey: _sealKey, lastHash: _lastHash, ...summary } = sessionRecord(r);
  return summary;
}

/** A row field from a hostile view: the type the row holds, or a thrown reason. */
function field<T>(v: Record<string, unknown>, name: string, ok: (x: unknown) => boolean): T {
  const x = v[name] === undefined ? null : v[name];
  if (!ok(x)) throw new Error(`${name} is not what a stored row holds`);
  return x as T;
}
const isStr = (x: unknown) => typeof x === 'string';
const isStrOrNull = (x: unknown) => x === null || typeof x === 'string';
const isNum = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
const isNumOrNull = (x: unknown) => x === null || isNum(x);
const json = (x: unknown): string | null => (x === null || x === undefined ? null : JSON.stringify(x));

/** The digest fields of a command as a bundle carries it (a CommandView); throws on a malformed one. */
export function commandFactsOfView(v: Record<string, unknown>): CommandFacts & { caused_by: number | null } {
  if (!Array.isArray(v.targets)) throw new Error('targets is not a list');
  return {
    id: field(v, 'id', isNum),
    session_id: field(v, 'sessionId', isStr),
    idx: field(v, 'index', isNum),
    kind: field(v, 'kind', isStr),
    text: field(v, 'text', isStr),
    classification: field(v, 'classification', isStrOrNull),
    targets: JSON.stringify(v.targets),
    status: field(v, 'status', isStr),
    started_at: field(v, 'startedAt', isStr),
    started_us: field(v, 'startUs', isNum),
    ended_us: field(v, 'endUs', isNumOrNull),
    start_seq: field(v, 'startSeq', isNumOrNull),
    end_seq: field(v, 'endSeq', isNumOrNull),
    detail: json(v.detail),
    result: json(v.result),
    error: field(v, 'error', isStrOrNull),
    caused_by: field(v, 'causedBy', isNumOrNull),
  };
}

/** The digest fields of a finding as a bundle carries it (a FindingView); throws on a malformed one. */
export function findingFactsOfView(v: Record<string, unknown>): FindingFacts {
  if (typeof v.maskedLive !== 'boolean') throw new Error('maskedLive is not true or false');
  return {
    id: field(v, 'id', isNum),
    session_id: field(v, 'sessionId', isStrOrNull),
    command_id: field(v, 'commandId', isNumOrNull),
    event_seq: field(v, 'eventSeq', isNumOrNull),
    category: field(v, 'category', isStr),
    kind: field(v, 'kind', isStr),
    fp: field(v, 'fp', isStrOrNull),
    direction: field(v, 'direction', isStr),
    masked_live: v.maskedLive ? 1 : 0,
    detail: json(v.detail),
    created_at: field(v, 'createdAt', isStr),
  };
}
