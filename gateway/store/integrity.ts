/**
 * Checks the live store against its hash chains: every event, every seal, and every command and
 * finding row against the digests the chain holds (`flightlog verify` with no FILE, the app's
 * "sealed" badge). Also checks retention tombstones' signatures. Reads only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Db } from './db';
import type { IntegrityReply, IntegrityRequest } from './integrity-worker';
import { FlightlogError } from '../core/errors';
import { chainHash, commandDigest, findingDigest, genesisHash, keyFingerprint, sealMessage, tombstoneMessage, verifySeal, type TombstoneFacts } from './chain';
import { Coverage, type CoverageProblem } from './coverage';
import type { CommandRow, EventRow, FindingRow, SessionRow } from './rows';

/**
 * verified: sealed, chain, seal and rows match; live: still recording, everything so far matches;
 * legacy: recorded before rows were chained, events and seal match; bad: something does not.
 */
export type IntegrityState = 'verified' | 'live' | 'legacy' | 'bad';

export interface IntegrityProblem {
  session: string;
  table: 'sessions' | 'events' | 'commands' | 'findings' | 'tombstones';
  /** the row: event seq, command or finding id, session id */
  id: number | string | null;
  what: string;
}

export interface SessionIntegrity {
  session: string;
  state: IntegrityState;
  events: number;
  commands: number;
  findings: number;
  problem: IntegrityProblem | null;
  /** one line for a person */
  message: string;
}

export interface TombstoneView {
  sessionId: string;
  connection: string;
  protocol: string;
  identity: string | null;
  startedAt: string;
  endedAt: string | null;
  eventCount: number;
  lastHash: string | null;
  removedAt: string;
  reason: string;
  signatureKey: string;
}

export interface TombstoneIntegrity extends TombstoneView {
  ok: boolean;
  message: string;
}

export interface StoreIntegrity {
  ok: boolean;
  counts: { sessions: number; verified: number; live: number; legacy: number; bad: number; tombstones: number };
  sessions: SessionIntegrity[];
  tombstones: TombstoneIntegrity[];
  /** the first problem, in session start order; null when ok */
  problem: IntegrityProblem | null;
  message: string;
}

export interface VerifyingKey {
  publicKeyPem: string;
  fingerprint: string;
}

/** The data dir's own gateway public key (what its seals verify with); null before the gateway first ran. */
export function dataDirKey(dataDir: string): VerifyingKey | null {
  try {
    const pem = fs.readFileSync(path.join(dataDir, 'gateway-key.pub.pem'), 'utf8');
    return { publicKeyPem: pem, fingerprint: keyFingerprint(pem) };
  } catch {
    return null;
  }
}

export function describeProblem(p: IntegrityProblem): string {
  if (p.session === '*') return `the store: ${p.what}`;
  const row = p.table === 'sessions' ? 'the session row' : p.table === 'events' ? `event ${p.id}` : p.table === 'tombstones' ? 'its tombstone' : `${p.table === 'commands' ? 'command' : 'finding'} ${p.id}`;
  return `session ${p.session}: ${row} (${p.table}): ${p.what}`;
}

function same(a: unknown, b: unknown): boolean {
  return (a ?? null) === (b ?? null);
}

/** Checks one session in one read snapshot (a live session's writer commits in between otherwise). */
export function checkSession(db: Db, sessionId: string, key: VerifyingKey): SessionIntegrity {
  return db.transaction(() => checkSessionNow(db, sessionId, key))();
}

function checkSessionNow(db: Db, id: string, key: VerifyingKey): SessionIntegrity {
  const row = db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
  if (!row) throw new FlightlogError('E_NOT_FOUND', `no session "${id}"`);
  const out: SessionIntegrity = { session: id, state: 'bad', events: 0, commands: 0, findings: 0, problem: null, message: '' };
  const bad = (table: IntegrityProblem['table'], rowId: IntegrityProblem['id'], what: string): SessionIntegrity => {
    out.state = 'bad';
    out.problem = { session: id, table, id: rowId, what };
    out.message = `NOT verified: ${describeProblem(out.problem).replace(`session ${id}: `, '')}`;
    return out;
  };
  const fromCoverage = (p: CoverageProblem): SessionIntegrity => bad(p.table, p.id, p.what);

  let prev = genesisHash(id);
  const cov = new Coverage();
  const events = db.prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? ORDER BY seq').iterate(id) as IterableIterator<EventRow>;
  for (const e of events) {
    if (e.seq !== out.events + 1) return bad('events', e.seq, `expected event ${out.events + 1} here (an event was deleted, added or moved)`);
    const h = chainHash(prev, e);
    if (h !== e.hash) return bad('events', e.seq, 'its content does not match its hash (edited)');
    prev = h;
    out.events++;
    cov.addEvent(e);
  }
  if (cov.problem) return fromCoverage(cov.problem);
  if (row.event_count !== out.events) return bad('sessions', id, `lists ${row.event_count} events, the chain holds ${out.events} (events deleted or added)`);
  if (out.events > 0 && row.last_hash !== prev) return bad('sessions', id, 'its last hash is not the end of its chain');
  const sealed = row.seal !== null;
  if (sealed) {
    if (row.seal_key !== key.fingerprint) return bad('sessions', id, `sealed by key ${row.seal_key ?? '(none)'}, not this gateway's key ${key.fingerprint}`);
    if (!verifySeal(key.publicKeyPem, sealMessage(id, out.events, prev), row.seal!)) return bad('sessions', id, 'the seal does not verify over the chain (re-sealed or the chain was replaced)');
  } else if (row.status !== 'live') {
    return bad('sessions', id, `is ${row.status} but has no seal`);
  }
  if (cov.coversRows) {
    const o = cov.openData ?? {};
    const fields: Array<[string, unknown, unknown]> = [
      ['connection', row.connection, o.connection],
      ['protocol', row.protocol, o.protocol],
      ['identity', row.identity, o.identity],
      ['run', row.run_id, o.runId],
      ['client address', row.client_addr, o.clientAddr],
    ];
    if (sealed) {
      const c = cov.closeData ?? {};
      fields.push(['status', row.status, c.status], ['end reason', row.end_reason, c.reason]);
    }
    for (const [name, stored, chained] of fields) {
      if (!same(stored, chained)) return bad('sessions', id, `its ${name} is ${JSON.stringify(stored ?? null)}, the chain says ${JSON.stringify(chained ?? null)}`);
    }
  }
  // what `flightlog blame` follows: each command's target rows must be its (chained) target list
  const targets = new Map<number, Set<string>>();
  for (const c of db.prepare('SELECT * FROM commands WHERE session_id = ? ORDER BY id').iterate(id) as IterableIterator<CommandRow>) {
    out.commands++;
    const p = cov.command(c.id, commandDigest(c), c.caused_by, c.status, sealed);
    if (p) return fromCoverage(p);
    targets.set(c.id, new Set(targetList(c.targets)));
  }
  const indexed = new Map<number, Set<string>>();
  for (const t of db.prepare('SELECT command_id, target FROM command_targets WHERE command_id IN (SELECT id FROM commands WHERE session_id = ?)').iterate(id) as IterableIterator<{ command_id: number; target: string }>) {
    const set = indexed.get(t.command_id) ?? new Set<string>();
    set.add(t.target);
    indexed.set(t.command_id, set);
  }
  for (const [cid, want] of targets) {
    const have = indexed.get(cid) ?? new Set<string>();
    // a live session's newest commands get their blame rows with the recorder's next pass
    if (have.size === 0 && row.status === 'live') continue;
    if (have.size !== want.size || [...want].some((t) => !have.has(t))) {
      return bad('commands', cid, `its blame index (command_targets) lists ${JSON.stringify([...have])}, its chained targets are ${JSON.stringify([...want])}`);
    }
  }
  for (const f of db.prepare('SELECT * FROM findings WHERE session_id = ? ORDER BY id').iterate(id) as IterableIterator<FindingRow>) {
    out.findings++;
    const p = cov.finding(f.id, findingDigest(f), sealed);
    if (p) return fromCoverage(p);
  }
  const missing = cov.missing();
  if (missing) return fromCoverage(missing);
  const counts = `${out.events} events, ${out.commands} commands, ${out.findings} findings`;
  if (!cov.coversRows) {
    out.state = 'legacy';
    out.message = `${sealed ? 'sealed' : 'live'}, events${sealed ? ' and seal' : ''} verified (${counts}); recorded before commands and findings were chained, so those are not checked`;
  } else if (sealed) {
    out.state = 'verified';
    out.message = `verified: sealed, ${counts} match the chain`;
  } else {
    out.state = 'live';
    out.message = `live: ${counts} match the chain so far (not sealed yet)`;
  }
  return out;
}

function targetList(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string').map((t) => t.toLowerCase()) : [];
  } catch {
    return [];
  }
}

/** A tombstones row: the signed facts, who the session was, and the signature. */
interface TombstoneRow extends TombstoneFacts {
  protocol: string;
  identity: string | null;
  signature: string;
  signature_key: string;
}

function tombstoneView(t: TombstoneRow): TombstoneView {
  return {
    sessionId: t.session_id,
    connection: t.connection,
    protocol: t.protocol,
    identity: t.identity,
    startedAt: t.started_at,
    endedAt: t.ended_at,
    eventCount: t.event_count,
    lastHash: t.last_hash,
    removedAt: t.removed_at,
    reason: t.reason,
    signatureKey: t.signature_key,
  };
}

/** Sessions removed by retention, newest removal first. */
export function listTombstones(db: Db): TombstoneView[] {
  return (db.prepare('SELECT * FROM tombstones ORDER BY removed_at DESC, session_id').all() as TombstoneRow[]).map(tombstoneView);
}

function checkTombstone(t: TombstoneRow, key: VerifyingKey): TombstoneIntegrity {
  const view = tombstoneView(t);
  const ok = t.signature_key === key.fingerprint && verifySeal(key.publicKeyPem, tombstoneMessage(t), t.signature);
  const what = t.signature_key !== key.fingerprint ? `signed by key ${t.signature_key}, not this gateway's` : 'its signature does not verify (the tombstone was edited or forged)';
  return { ...view, ok, message: ok ? `removed by ${t.reason} on ${t.removed_at.slice(0, 10)} (${t.event_count} events, tombstone signature verified)` : `NOT verified: ${what}` };
}

/** Checks every session and tombstone of the store; the report names the first bad row. */
export function checkStore(db: Db, key: VerifyingKey): StoreIntegrity {
  const ids = (db.prepare('SELECT id FROM sessions ORDER BY started_us, id').all() as { id: string }[]).map((r) => r.id);
  const sessions = ids.map((id) => checkSession(db, id, key));
  const tombstones = (db.prepare('SELECT * FROM tombstones ORDER BY started_at, session_id').all() as TombstoneRow[]).map((t) => checkTombstone(t, key));
  const live = new Set(ids);
  const problems: IntegrityProblem[] = sessions.flatMap((s) => (s.problem ? [s.problem] : []));
  for (const t of tombstones) {
    if (!t.ok) problems.push({ session: t.sessionId, table: 'tombstones', id: t.sessionId, what: t.message.replace(/^NOT verified: /, '') });
    else if (live.has(t.sessionId)) problems.push({ session: t.sessionId, table: 'tombstones', id: t.sessionId, what: 'the session has a tombstone but its rows are still in the store' });
  }
  // a live session's newest commands wait up to a quarter second for their search rows (built in
  // batches): then only the index itself can be checked, and only a closed session's gap is a fault
  const unindexed = db
    .prepare(
      "SELECT count(*) AS n, coalesce(sum(s.status != 'live'), 0) AS closed FROM commands c JOIN sessions s ON s.id = c.session_id WHERE NOT EXISTS (SELECT 1 FROM commands_fts_docsize d WHERE d.id = c.id)",
    )
    .get() as { n: number; closed: number };
  try {
    // what `flightlog search` matches: the full-text index must be the commands' own text
    db.prepare(`INSERT INTO commands_fts(commands_fts, rank) VALUES ('integrity-check', ${unindexed.n === 0 ? 1 : 0})`).run();
    if (unindexed.closed > 0) throw new Error('closed sessions have commands missing from the search index');
  } catch {
    problems.push({ session: '*', table: 'commands', id: null, what: 'the search index (commands_fts) does not match the command texts (edited behind the store)' });
  }
  const count = (s: IntegrityState) => sessions.filter((x) => x.state === s).length;
  const counts = { sessions: sessions.length, verified: count('verified'), live: count('live'), legacy: count('legacy'), bad: count('bad'), tombstones: tombstones.length };
  const problem = problems[0] ?? null;
  const parts = [`${counts.verified} sealed`, counts.live && `${counts.live} live`, counts.legacy && `${counts.legacy} legacy (events and seals only)`, counts.tombstones && `${counts.tombstones} removed by retention`].filter(Boolean);
  const message = problem
    ? `not verified: ${describeProblem(problem)}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`
    : `verified: ${counts.sessions} session${counts.sessions === 1 ? '' : 's'} (${parts.join(', ')}), signed by ${key.fingerprint}`;
  return { ok: problem === null, counts, sessions, tombstones, problem, message };
}

/** How long a live session's check is reused while it keeps recording (every commit changes the store). */
const LIVE_REUSE_MS = 5000;
/** an idle checker thread is stopped after this long */
const CHECKER_IDLE_MS = 30_000;
const CHECKER_FILE = path.join(__dirname, 'integrity-worker.js');

/**
 * Session checks for the app's badge. They run on a thread of their own (a big session takes
 * a while to hash) and are recomputed only when the store changed since: another connection
 * committed (data_version) or this one wrote (total_changes). A live session, whose writer
 * commits every few milliseconds, is rechecked at most every few seconds.
 */
export class IntegrityCache {
  private readonly cache = new Map<string, { version: string; at: number; result: SessionIntegrity }>();
  private readonly running = new Map<string, Promise<SessionIntegrity>>();
  private readonly waiting = new Map<number, { resolve: (r: SessionIntegrity) => void; reject: (e: Error) => void }>();
  private worker: Worker | null = null;
  private idle: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly useWorker: boolean;

  constructor(
    private readonly db: Db,
    private readonly key: VerifyingKey,
  ) {
    this.useWorker = !db.memory && db.name !== '' && fs.existsSync(CHECKER_FILE);
  }

  check(sessionId: string): Promise<SessionIntegrity> {
    const version = `${String(this.db.pragma('data_version', { simple: true }))}:${String((this.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n)}`;
    const hit = this.cache.get(sessionId);
    const now = Date.now();
    if (hit && (hit.version === version || (hit.result.state === 'live' && now - hit.at < LIVE_REUSE_MS))) return Promise.resolve(hit.result);
    const key = `${sessionId}@${version}`;
    const pending = this.running.get(key);
    if (pending) return pending;
    const p = (this.useWorker ? this.viaWorker(sessionId) : Promise.resolve(checkSession(this.db, sessionId, this.key))).then((result) => {
      if (this.cache.size >= 1000) this.cache.clear();
      this.cache.set(sessionId, { version, at: now, result });
      return result;
    });
    this.running.set(key, p);
    const done = () => this.running.delete(key);
    p.then(done, done);
    return p;
  }

  private viaWorker(sessionId: string): Promise<SessionIntegrity> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    const w = (this.worker ??= this.start());
    w.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ type: 'check', id, sessionId } satisfies IntegrityRequest);
    });
  }

  private start(): Worker {
    const w = new Worker(CHECKER_FILE, { workerData: { flightlogIntegrity: true, file: this.db.name, key: { publicKeyPem: this.key.publicKeyPem, fingerprint: this.key.fingerprint } } });
    w.on('message', (m: IntegrityReply) => {
      const waiter = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.result) waiter?.resolve(m.result);
      else waiter?.reject(new FlightlogError(/^no session/.test(m.error ?? '') ? 'E_NOT_FOUND' : 'E_INTEGRITY', m.error ?? 'the check failed'));
      if (this.waiting.size === 0 && this.worker === w) {
        w.unref();
        this.idle = setTimeout(() => this.close(), CHECKER_IDLE_MS);
        this.idle.unref();
      }
    });
    const lost = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      for (const waiter of this.waiting.values()) waiter.reject(new FlightlogError('E_INTEGRITY', why));
      this.waiting.clear();
    };
    w.on('error', (err: Error) => lost(`the integrity checker failed: ${err.message}`));
    w.on('exit', () => lost('the integrity checker stopped'));
    return w;
  }

  /** Stops the checker thread when idle (the next check starts a new one); `force`: now, failing checks under way. */
  close(force = false): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    const w = this.worker;
    if (!w || (this.waiting.size && !force)) return;
    this.worker = null;
    for (const waiter of this.waiting.values()) waiter.reject(new FlightlogError('E_INTEGRITY', 'the integrity checker was stopped'));
    this.waiting.clear();
    if (force) void w.terminate();
    else w.postMessage({ type: 'close' });
  }
}
