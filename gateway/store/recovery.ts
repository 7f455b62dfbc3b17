/**
 * Sessions a crashed gateway left `live`: at the next start they are closed as crashed (status
 * `error`, reason `crashed`) and sealed over what was committed. One `close` event is appended to
 * the committed chain; it carries the digests of command and finding rows that were committed but
 * not yet chained (their covering event was still in memory), so the seal covers every row the
 * store holds. Commands still running are ended as cancelled first.
 */
import type { KeyObject } from 'node:crypto';
import type { Db } from './db';
import { chainHash, commandDigest, findingDigest, genesisHash, sealMessage, signSeal } from './chain';
import { Coverage } from './coverage';
import type { CommandRow, EventRow, FindingRow, SessionRow } from './rows';

export const CRASH_REASON = 'crashed';
const CANCELLED = 'the gateway stopped (crash) before the command finished';

export interface RecoveryResult {
  /** sessions closed and sealed */
  closed: string[];
  /** sessions closed but left unsealed: their committed chain does not verify */
  unsealed: string[];
}

/**
 * Closes every session still marked live. Call only while no recorder writes to this store
 * (the gateway holds the data dir's lock, before its recorder starts).
 */
export function closeCrashedSessions(db: Db, key: { privateKey: KeyObject; fingerprint: string }): RecoveryResult {
  const result: RecoveryResult = { closed: [], unsealed: [] };
  const live = db.prepare("SELECT * FROM sessions WHERE status = 'live' ORDER BY started_us").all() as SessionRow[];
  // search rows of a live session are built in batches: the crash may have come before the last one
  const index = db.prepare(
    'INSERT INTO commands_fts(rowid, text) SELECT id, text FROM commands WHERE session_id = ? AND NOT EXISTS (SELECT 1 FROM commands_fts_docsize d WHERE d.id = commands.id)',
  );
  // likewise its blame rows, as the recorder writes them: each distinct target, lower-cased
  const unblamed = db.prepare("SELECT id, targets FROM commands WHERE session_id = ? AND targets != '[]' AND NOT EXISTS (SELECT 1 FROM command_targets t WHERE t.command_id = commands.id)");
  const blame = db.prepare('INSERT INTO command_targets (command_id, target) VALUES (?, ?)');
  for (const s of live) {
    db.transaction(() => {
      index.run(s.id);
      for (const c of unblamed.all(s.id) as Array<{ id: number; targets: string }>) {
        for (const t of new Set(targetsOf(c.targets))) blame.run(c.id, t.toLowerCase());
      }
      if (closeOne(db, s, key)) result.closed.push(s.id);
      else result.unsealed.push(s.id);
    }).immediate();
  }
  return result;
}

function closeOne(db: Db, s: SessionRow, key: { privateKey: KeyObject; fingerprint: string }): boolean {
  let prev = genesisHash(s.id);
  let count = 0;
  let last: EventRow | null = null;
  let whole = true;
  const cov = new Coverage();
  for (const e of db.prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? ORDER BY seq').iterate(s.id) as IterableIterator<EventRow>) {
    if (e.seq !== count + 1 || chainHash(prev, e) !== e.hash) {
      whole = false;
      break;
    }
    prev = e.hash;
    count++;
    last = e;
    cov.addEvent(e);
  }
  const endedAt = last?.wall ?? s.started_at;
  if (!whole) {
    // never sign a chain that does not verify: verify will name the bad event
    db.prepare("UPDATE sessions SET status = 'error', end_reason = ?, ended_at = ? WHERE id = ?").run(`${CRASH_REASON} (its chain does not verify, not sealed)`, endedAt, s.id);
    return false;
  }
  const endSeq = count;
  db.prepare("UPDATE commands SET status = 'cancelled', error = ?, end_seq = ? WHERE session_id = ? AND status = 'running'").run(CANCELLED, endSeq, s.id);
  const data: { status: string; reason: string; recovered: true; commands?: Array<[number, string, number | null]>; findings?: Array<[number, string]> } = {
    status: 'error',
    reason: CRASH_REASON,
    recovered: true,
  };
  if (cov.coversRows) {
    const commands = (db.prepare('SELECT * FROM commands WHERE session_id = ? ORDER BY id').all(s.id) as CommandRow[]).filter((c) => !cov.coversCommand(c.id));
    const findings = (db.prepare('SELECT * FROM findings WHERE session_id = ? ORDER BY id').all(s.id) as FindingRow[]).filter((f) => !cov.coversFinding(f.id));
    if (commands.length) data.commands = commands.map((c) => [c.id, commandDigest(c), c.caused_by]);
    if (findings.length) data.findings = findings.map((f) => [f.id, findingDigest(f)]);
  }
  const e = {
    seq: count + 1,
    t_us: Math.max(last?.t_us ?? 0, Date.now() * 1000 - s.started_us),
    wall: new Date().toISOString(),
    kind: 'close',
    direction: 'gateway',
    command_id: null,
    data: JSON.stringify(data),
  };
  const hash = chainHash(prev, e);
  db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(s.id, e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data, hash);
  const seal = signSeal(key.privateKey, sealMessage(s.id, e.seq, hash));
  const counts = db.prepare('SELECT (SELECT COUNT(*) FROM commands WHERE session_id = ?) AS c, (SELECT COUNT(*) FROM findings WHERE session_id = ?) AS f').get(s.id, s.id) as { c: number; f: number };
  db.prepare("UPDATE sessions SET status = 'error', end_reason = ?, ended_at = ?, event_count = ?, command_count = ?, finding_count = ?, last_hash = ?, seal = ?, seal_key = ? WHERE id = ?").run(
    CRASH_REASON,
    endedAt,
    e.seq,
    counts.c,
    counts.f,
    hash,
    seal,
    key.fingerprint,
    s.id,
  );
  return true;
}

function targetsOf(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}
