/** The reads behind terminal replay: a session's terminal events (output, resizes), paged by seq. */
import type { Db } from './db';

/** A terminal event as replay needs it (the masked data JSON text, not the whole chained row). */
export interface TerminalEventRow {
  seq: number;
  t_us: number;
  kind: string;
  data: string;
}

const TERMINAL_KINDS = "('o','e','r','pty')";

/** A pager over a session's terminal events after a seq, reusing one prepared statement. */
export function terminalEventPages(db: Db): (sessionId: string, afterSeq: number, limit: number) => TerminalEventRow[] {
  const page = db.prepare(`SELECT seq, t_us, kind, data FROM events WHERE session_id = ? AND seq > ? AND kind IN ${TERMINAL_KINDS} ORDER BY seq LIMIT ?`);
  return (sessionId, afterSeq, limit) => page.all(sessionId, afterSeq, limit) as TerminalEventRow[];
}

/** Terminal events after a seq, for continuous playback. */
export function terminalEventsAfter(db: Db, sessionId: string, afterSeq: number, limit: number): TerminalEventRow[] {
  return terminalEventPages(db)(sessionId, afterSeq, limit);
}

/** Terminal events with `afterSeq < seq < beforeSeq` recorded at or before `tUs`. */
export function terminalEventsUpTo(db: Db, sessionId: string, afterSeq: number, beforeSeq: number, tUs: number, limit: number): TerminalEventRow[] {
  return db
    .prepare(`SELECT seq, t_us, kind, data FROM events WHERE session_id = ? AND seq > ? AND seq < ? AND t_us <= ? AND kind IN ${TERMINAL_KINDS} ORDER BY seq LIMIT ?`)
    .all(sessionId, afterSeq, beforeSeq, tUs, limit) as TerminalEventRow[];
}

/** The session's last event of any kind (its seq and time), or undefined for an empty session. */
export function lastEventOf(db: Db, sessionId: string): { seq: number; t_us: number } | undefined {
  return db.prepare('SELECT seq, t_us FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1').get(sessionId) as { seq: number; t_us: number } | undefined;
}
