/**
 * What a session's hash chain says about its command and finding rows, and the check of rows
 * against it. One implementation for the live store (`flightlog verify`, the app's badge) and for
 * bundles (`flightlog verify FILE`): both feed the chained events in order, then each row's digest.
 *
 * The chain carries, as events with direction `gateway`:
 *   open          `{…, chain: 2}`: this session's rows are covered (older sessions lack it)
 *   command.done  on command_id: `{digest, causedBy, findings?: [[id, digest]…]}` when a command finishes
 *   lineage       `{command, causedBy}` when a lineage link is set after the fact
 *   close         `{status, reason, findings?, commands?}`: findings and (after a crash) commands not yet covered
 */
import { ROW_CHAIN_VERSION } from './chain';

export const COMMAND_EVENT = 'command.done';
export const LINEAGE_EVENT = 'lineage';

export type CoveredTable = 'sessions' | 'events' | 'commands' | 'findings';

export interface CoverageProblem {
  table: CoveredTable;
  id: number | string | null;
  /** the event that holds the fact, when there is one */
  seq: number | null;
  what: string;
}

interface Fact {
  digest: string;
  seq: number;
  seen: boolean;
}

interface CommandFact extends Fact {
  causedBy: number | null;
}

/** The event fields coverage reads (a stored row or a bundle line). */
export interface ChainedFactEvent {
  seq: number;
  kind: string;
  direction: string;
  command_id: number | null;
  data: string;
}

const isDigest = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isLink = (v: unknown): v is number | null => v === null || isId(v);

export class Coverage {
  /** the open event's `chain` value; null until the open event is seen */
  version: number | null = null;
  openData: Record<string, unknown> | null = null;
  closeData: Record<string, unknown> | null = null;
  private readonly commands = new Map<number, CommandFact>();
  private readonly lineage = new Map<number, number | null>();
  private readonly findings = new Map<number, Fact>();
  /** the first malformed fact event, if any */
  problem: CoverageProblem | null = null;

  /** True when this session's chain covers its rows (recorded by a Flightlog that chains them). */
  get coversRows(): boolean {
    return (this.version ?? 0) >= ROW_CHAIN_VERSION;
  }

  /** Feeds one chained event (already checked against the chain), in order. */
  addEvent(e: ChainedFactEvent): void {
    if (e.direction !== 'gateway') return;
    if (e.kind !== 'open' && e.kind !== 'close' && e.kind !== COMMAND_EVENT && e.kind !== LINEAGE_EVENT) return;
    let d: unknown;
    try {
      d = JSON.parse(e.data);
    } catch {
      d = null;
    }
    if (!d || typeof d !== 'object' || Array.isArray(d)) return this.bad(e.seq, `its ${e.kind} event holds no object`);
    const o = d as Record<string, unknown>;
    if (e.kind === 'open') {
      if (e.seq === 1) {
        this.openData = o;
        this.version = typeof o.chain === 'number' ? o.chain : 1;
      }
      return;
    }
    if (!this.coversRows) return;
    if (e.kind === COMMAND_EVENT) {
      if (!isId(e.command_id) || !isDigest(o.digest) || !isLink(o.causedBy ?? null)) return this.bad(e.seq, 'a malformed command.done event');
      this.commands.set(e.command_id, { digest: o.digest, causedBy: (o.causedBy ?? null) as number | null, seq: e.seq, seen: false });
      this.addFindings(o.findings, e.seq);
    } else if (e.kind === LINEAGE_EVENT) {
      if (!isId(o.command) || !isLink(o.causedBy)) return this.bad(e.seq, 'a malformed lineage event');
      this.lineage.set(o.command, o.causedBy);
    } else {
      this.closeData = o;
      this.addFindings(o.findings, e.seq);
      if (Array.isArray(o.commands)) {
        for (const c of o.commands) {
          if (!Array.isArray(c) || !isId(c[0]) || !isDigest(c[1]) || !isLink(c[2] ?? null)) return this.bad(e.seq, 'a malformed command list in the close event');
          this.commands.set(c[0], { digest: c[1], causedBy: (c[2] ?? null) as number | null, seq: e.seq, seen: false });
        }
      }
    }
  }

  private addFindings(list: unknown, seq: number): void {
    if (list === undefined) return;
    if (!Array.isArray(list)) return this.bad(seq, 'a malformed finding list');
    for (const f of list) {
      if (!Array.isArray(f) || !isId(f[0]) || !isDigest(f[1])) return this.bad(seq, 'a malformed finding list');
      this.findings.set(f[0], { digest: f[1], seq, seen: false });
    }
  }

  private bad(seq: number, what: string): void {
    this.problem ??= { table: 'events', id: seq, seq, what };
  }

  /**
   * Checks one command row by its digest. `sealed`: the session is closed, so every row must be
   * covered; in a live session a command still running is not yet.
   */
  command(id: number, digest: string, causedBy: number | null, status: string, sealed: boolean): CoverageProblem | null {
    if (!this.coversRows) return null;
    const f = this.commands.get(id);
    if (!f) {
      if (!sealed && status === 'running') return null;
      return { table: 'commands', id, seq: null, what: 'is not in the hash chain (added to the store, or moved from another session)' };
    }
    f.seen = true;
    if (f.digest !== digest) return { table: 'commands', id, seq: f.seq, what: `differs from the digest chained at event ${f.seq} (its text, result, status or timing was edited)` };
    const want = this.lineage.has(id) ? this.lineage.get(id)! : f.causedBy;
    if (want !== causedBy) return { table: 'commands', id, seq: f.seq, what: `its lineage link (caused_by) is ${causedBy ?? 'none'}, the chain says ${want ?? 'none'}` };
    return null;
  }

  finding(id: number, digest: string, sealed: boolean): CoverageProblem | null {
    if (!this.coversRows) return null;
    const f = this.findings.get(id);
    if (!f) return sealed ? { table: 'findings', id, seq: null, what: 'is not in the hash chain (added to the store, or moved from another session)' } : null;
    f.seen = true;
    if (f.digest !== digest) return { table: 'findings', id, seq: f.seq, what: `differs from the digest chained at event ${f.seq} (edited)` };
    return null;
  }

  /** True when the chain already holds this command's digest. */
  coversCommand(id: number): boolean {
    return this.commands.has(id);
  }

  coversFinding(id: number): boolean {
    return this.findings.has(id);
  }

  /** After every row was checked: a chained fact with no row means the row was deleted. */
  missing(): CoverageProblem | null {
    for (const [id, f] of this.commands) if (!f.seen) return { table: 'commands', id, seq: f.seq, what: `is missing: the chain recorded it at event ${f.seq} (deleted)` };
    for (const [id, f] of this.findings) if (!f.seen) return { table: 'findings', id, seq: f.seq, what: `is missing: the chain recorded it at event ${f.seq} (deleted)` };
    return null;
  }
}
