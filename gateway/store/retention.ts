/**
 * Retention (`flightlog gc`, and the running gateway once a day): removes sessions that ended
 * longer ago than their connection's retention, with their events, commands, findings and search
 * rows, and keeps a tombstone signed with the gateway key in their place, so the gap is never
 * silent: `flightlog sessions` and `flightlog verify` show it, and verify checks the signature.
 */
import type { KeyObject } from 'node:crypto';
import type { Db } from './db';
import { signSeal, tombstoneMessage, type TombstoneFacts } from './chain';

export const RETENTION_REASON = 'retention';

export interface GcSession {
  sessionId: string;
  connection: string;
  protocol: string;
  identity: string | null;
  startedAt: string;
  endedAt: string;
  events: number;
  commands: number;
  findings: number;
  /** the retention that applied (`30d`) */
  retention: string;
}

export interface GcResult {
  dryRun: boolean;
  /** sessions removed (or, with dryRun, that would be) */
  removed: GcSession[];
  events: number;
}

export interface GcOptions {
  /** the retention spec for a connection (its own, else the default), null to keep its sessions */
  retentionOf: (connection: string) => { spec: string; ms: number } | null;
  key: { privateKey: KeyObject; fingerprint: string };
  dryRun?: boolean;
  now?: Date;
}

interface Candidate {
  id: string;
  connection: string;
  protocol: string;
  identity: string | null;
  started_at: string;
  ended_at: string;
  event_count: number;
  command_count: number;
  finding_count: number;
  last_hash: string | null;
}

/** Removes every ended session past its retention; each in its own transaction with its tombstone. */
export function collectGarbage(db: Db, opts: GcOptions): GcResult {
  const now = opts.now ?? new Date();
  const result: GcResult = { dryRun: opts.dryRun === true, removed: [], events: 0 };
  const connections = db.prepare("SELECT DISTINCT connection FROM sessions WHERE status != 'live' AND ended_at IS NOT NULL").all() as { connection: string }[];
  const stmts = {
    // only rows in the index: deleting one it never held would corrupt it (search rows are built in batches)
    fts: db.prepare(
      "INSERT INTO commands_fts(commands_fts, rowid, text) SELECT 'delete', id, text FROM commands WHERE session_id = ? AND EXISTS (SELECT 1 FROM commands_fts_docsize d WHERE d.id = commands.id)",
    ),
    targets: db.prepare('DELETE FROM command_targets WHERE command_id IN (SELECT id FROM commands WHERE session_id = ?)'),
    commands: db.prepare('DELETE FROM commands WHERE session_id = ?'),
    findings: db.prepare('DELETE FROM findings WHERE session_id = ?'),
    events: db.prepare('DELETE FROM events WHERE session_id = ?'),
    session: db.prepare("DELETE FROM sessions WHERE id = ? AND status != 'live'"),
    tombstone: db.prepare(
      `INSERT INTO tombstones (session_id, connection, protocol, identity, started_at, ended_at, event_count, last_hash, removed_at, reason, signature, signature_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
  for (const { connection } of connections) {
    const r = opts.retentionOf(connection);
    if (!r) continue;
    const cutoff = new Date(now.getTime() - r.ms).toISOString();
    const due = db
      .prepare(
        `SELECT id, connection, protocol, identity, started_at, ended_at, event_count, command_count, finding_count, last_hash FROM sessions
          WHERE connection = ? AND status != 'live' AND ended_at IS NOT NULL AND ended_at < ? ORDER BY started_us, id`,
      )
      .all(connection, cutoff) as Candidate[];
    for (const s of due) {
      result.removed.push({
        sessionId: s.id,
        connection: s.connection,
        protocol: s.protocol,
        identity: s.identity,
        startedAt: s.started_at,
        endedAt: s.ended_at,
        events: s.event_count,
        commands: s.command_count,
        findings: s.finding_count,
        retention: r.spec,
      });
      result.events += s.event_count;
      if (result.dryRun) continue;
      const removedAt = now.toISOString();
      const facts: TombstoneFacts = {
        session_id: s.id,
        connection: s.connection,
        started_at: s.started_at,
        ended_at: s.ended_at,
        event_count: s.event_count,
        last_hash: s.last_hash,
        removed_at: removedAt,
        reason: RETENTION_REASON,
      };
      const signature = signSeal(opts.key.privateKey, tombstoneMessage(facts));
      db.transaction(() => {
        // the FTS index has external content: its rows go first, while the command texts are still there
        stmts.fts.run(s.id);
        stmts.targets.run(s.id);
        stmts.commands.run(s.id);
        stmts.findings.run(s.id);
        stmts.events.run(s.id);
        stmts.session.run(s.id);
        stmts.tombstone.run(s.id, s.connection, s.protocol, s.identity, s.started_at, s.ended_at, s.event_count, s.last_hash, removedAt, RETENTION_REASON, signature, opts.key.fingerprint);
      }).immediate();
    }
  }
  return result;
}
