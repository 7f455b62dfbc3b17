/**
 * The response queue: one entry per client message that the server will answer, in the order
 * sent. Server messages are matched to the head entry, which is what makes pipelining (many
 * messages before any answer) and gateway-made errors come out in order.
 */
import type { Column } from './server-messages';
import type { Recordable, Running } from './relay-capture';

export type Pending =
  | { kind: 'query'; runs: Running[]; idx: number }
  | { kind: 'parse'; sql: string; rec: Recordable }
  | { kind: 'bind' }
  | { kind: 'describe'; target: { columns: Column[] | null } | null }
  | { kind: 'close' }
  | { kind: 'execute'; run: Running }
  | { kind: 'fcall'; run: Running }
  | { kind: 'sync' }
  | { kind: 'synthetic'; error: Buffer; ready: boolean };

export class ResponseQueue {
  /** oldest first; the relay pushes as it reads client messages */
  readonly items: Pending[] = [];

  get head(): Pending | undefined {
    return this.items[0];
  }

  /** The command the next result message belongs to. */
  currentRun(): Running | null {
    const head = this.items[0];
    if (!head) return null;
    if (head.kind === 'query') return head.runs[head.idx] ?? null;
    if (head.kind === 'execute' || head.kind === 'fcall') return head.run;
    return null;
  }

  /** After a command's end message: move to the next statement or pending item. */
  advance(): void {
    const head = this.items[0];
    if (!head) return;
    if (head.kind === 'query') head.idx++;
    else if (head.kind === 'execute') this.items.shift();
  }

  /** Extended protocol after an error: the server skips everything up to Sync; these are what it skipped. */
  dropUntilSync(): Pending[] {
    const dropped: Pending[] = [];
    while (this.items.length && this.items[0].kind !== 'sync') dropped.push(this.items.shift() as Pending);
    return dropped;
  }

  /**
   * ReadyForQuery ends a simple query, a Sync'd pipeline or a function call: the entries it
   * closes leave the queue, each handed to `unanswered` (a Sync has nothing to abandon).
   * A gateway-made answer waiting at the head stays for the relay to send.
   */
  ready(unanswered: (p: Pending) => void): void {
    while (this.items.length) {
      const p = this.items[0];
      if (p.kind === 'synthetic') break;
      this.items.shift();
      if (p.kind === 'query' || p.kind === 'sync' || p.kind === 'fcall') {
        if (p.kind !== 'sync') unanswered(p);
        break;
      }
      unanswered(p);
    }
  }

  /** The gateway-made answers now due at the head, removed from the queue. */
  *dueSynthetics(): Generator<Extract<Pending, { kind: 'synthetic' }>> {
    while (this.items.length && this.items[0].kind === 'synthetic') yield this.items.shift() as Extract<Pending, { kind: 'synthetic' }>;
  }
}

/** The commands an entry still owes a result for. */
export function runsOf(p: Pending): Running[] {
  return p.kind === 'query' ? p.runs.slice(p.idx) : p.kind === 'execute' || p.kind === 'fcall' ? [p.run] : [];
}
