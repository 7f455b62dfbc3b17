/**
 * Keyframe index for fast seeking in terminal recordings (the way Warpgate keeps one): the
 * session's output is fed through a headless xterm once, and every KEYFRAME_BYTES of output
 * (or KEYFRAME_US of recording time) the screen is serialized. A seek then restores the
 * nearest snapshot and applies only the frames after it, instead of replaying from the start.
 * Built on demand, incrementally (a live session's index grows as it is asked again), cached
 * in memory per session.
 */
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { Db } from '../store/db';
import { lastEventOf, terminalEventPages, terminalEventsAfter, terminalEventsUpTo, type TerminalEventRow } from '../store/replay-reads';
import { TerminalFilter } from '../common/terminal-filter';
import type { FramesResult, KeyframeRef, ReplayFrame, ReplayIndex, SeekResult } from '../common/replay-types';

export const KEYFRAME_BYTES = 256 * 1024;
export const KEYFRAME_US = 60_000_000;
/** many tiny frames (keystroke echo) cost time to apply too */
export const KEYFRAME_FRAMES = 4000;
/** scrollback kept in a snapshot: enough to scroll back a few screens after a seek */
const SNAPSHOT_SCROLLBACK = 200;
const PAGE = 5000;
/** most frames one seek or frames request returns (a keyframe bounds a seek's delta anyway) */
const MAX_FRAMES = 20000;

interface Keyframe extends KeyframeRef {
  cols: number;
  rows: number;
  snapshot: string;
}

/** Decodes a stored terminal event into a frame; null for anything else. */
export function frameOf(row: TerminalEventRow): ReplayFrame | null {
  let data: unknown;
  try {
    data = JSON.parse(row.data);
  } catch {
    return null;
  }
  if (row.kind === 'o' || row.kind === 'e') {
    return typeof data === 'string' ? { seq: row.seq, tUs: row.t_us, k: 'o', d: data } : null;
  }
  if (row.kind === 'r' && typeof data === 'string') {
    const m = /^(\d+)x(\d+)$/.exec(data);
    return m ? { seq: row.seq, tUs: row.t_us, k: 'r', cols: clampSize(Number(m[1]), 80), rows: clampSize(Number(m[2]), 24) } : null;
  }
  if (row.kind === 'pty' && data && typeof data === 'object') {
    const d = data as { cols?: unknown; rows?: unknown };
    return { seq: row.seq, tUs: row.t_us, k: 'r', cols: clampSize(d.cols, 80), rows: clampSize(d.rows, 24) };
  }
  return null;
}

function clampSize(v: unknown, fallback: number): number {
  const n = typeof v === 'number' && Number.isFinite(v) ? Math.floor(v) : fallback;
  return Math.min(Math.max(n, 2), 1000);
}

class SessionIndex {
  readonly keyframes: Keyframe[] = [];
  private readonly term: Terminal;
  private readonly serializer = new SerializeAddon();
  private readonly filter = new TerminalFilter();
  lastSeq = 0;
  durationUs = 0;
  outputBytes = 0;
  terminal = false;
  cols = 80;
  rows = 24;
  startCols: number | null = null;
  startRows: number | null = null;
  private bytesSince = 0;
  private framesSince = 0;
  private lastKeyframeUs = 0;
  private lastTerminalSeq = 0;
  private updating: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    readonly sessionId: string,
  ) {
    this.term = new Terminal({ cols: 80, rows: 24, scrollback: SNAPSHOT_SCROLLBACK, allowProposedApi: true });
    this.term.loadAddon(this.serializer);
  }

  /** Indexes whatever was recorded since the last call. Calls are serialized. */
  update(): Promise<void> {
    this.updating = this.updating.then(() => this.indexNew());
    return this.updating;
  }

  private async indexNew(): Promise<void> {
    const page = terminalEventPages(this.db);
    for (;;) {
      const rows = page(this.sessionId, this.lastTerminalSeq, PAGE);
      for (const row of rows) {
        this.lastTerminalSeq = row.seq;
        const f = frameOf(row);
        if (!f) continue;
        this.terminal = true;
        if (f.k === 'r') {
          if (this.startCols === null) {
            this.startCols = f.cols;
            this.startRows = f.rows;
          }
          // resize applies at once while writes are queued: drain first so order holds
          await this.drain();
          this.cols = f.cols;
          this.rows = f.rows;
          this.term.resize(f.cols, f.rows);
          continue;
        }
        const text = this.filter.push(f.d);
        this.term.write(text);
        this.outputBytes += f.d.length;
        this.bytesSince += f.d.length;
        this.framesSince++;
        if (this.bytesSince >= KEYFRAME_BYTES || this.framesSince >= KEYFRAME_FRAMES || (this.bytesSince > 0 && f.tUs - this.lastKeyframeUs >= KEYFRAME_US)) {
          await this.drain();
          this.keyframes.push({ seq: f.seq, tUs: f.tUs, cols: this.cols, rows: this.rows, snapshot: this.serializer.serialize({ scrollback: SNAPSHOT_SCROLLBACK }) });
          this.bytesSince = 0;
          this.framesSince = 0;
          this.lastKeyframeUs = f.tUs;
        }
      }
      if (rows.length < PAGE) break;
    }
    await this.drain();
    const last = lastEventOf(this.db, this.sessionId);
    this.lastSeq = last?.seq ?? 0;
    this.durationUs = last?.t_us ?? 0;
  }

  private drain(): Promise<void> {
    return new Promise((resolve) => this.term.write('', resolve));
  }

  view(): ReplayIndex {
    return {
      sessionId: this.sessionId,
      terminal: this.terminal,
      cols: this.startCols ?? 80,
      rows: this.startRows ?? 24,
      durationUs: this.durationUs,
      lastSeq: this.lastSeq,
      keyframes: this.keyframes.map((k) => ({ seq: k.seq, tUs: k.tUs })),
      outputBytes: this.outputBytes,
    };
  }

  /** The nearest keyframe at or before tUs (binary search), or null. */
  keyframeAt(tUs: number): Keyframe | null {
    let lo = 0;
    let hi = this.keyframes.length - 1;
    let found: Keyframe | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.keyframes[mid].tUs <= tUs) {
        found = this.keyframes[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** The first keyframe after seq, or null. */
  keyframeAfter(seq: number): Keyframe | null {
    let lo = 0;
    let hi = this.keyframes.length - 1;
    let found: Keyframe | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.keyframes[mid].seq > seq) {
        found = this.keyframes[mid];
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return found;
  }

  dispose(): void {
    this.term.dispose();
  }
}

/** Per-gateway cache of session indexes (LRU). */
export class ReplayIndexer {
  private readonly cache = new Map<string, SessionIndex>();

  constructor(
    private readonly db: Db,
    private readonly maxSessions = 6,
  ) {}

  private async get(sessionId: string): Promise<SessionIndex> {
    let idx = this.cache.get(sessionId);
    if (idx) {
      this.cache.delete(sessionId);
    } else {
      idx = new SessionIndex(this.db, sessionId);
    }
    this.cache.set(sessionId, idx);
    while (this.cache.size > this.maxSessions) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.get(oldest)?.dispose();
      this.cache.delete(oldest);
    }
    await idx.update();
    return idx;
  }

  async index(sessionId: string): Promise<ReplayIndex> {
    return (await this.get(sessionId)).view();
  }

  /** The keyframe at or before tUs plus the frames from it up to tUs. */
  async seek(sessionId: string, tUs: number): Promise<SeekResult> {
    const idx = await this.get(sessionId);
    const kf = idx.keyframeAt(tUs);
    const after = kf?.seq ?? 0;
    // t_us only grows with seq, but SQLite cannot know that: bound the scan by the next
    // keyframe (whose time is past the target), so a seek reads one keyframe interval.
    const next = idx.keyframeAfter(after);
    const rows = terminalEventsUpTo(this.db, sessionId, after, next?.seq ?? Number.MAX_SAFE_INTEGER, tUs, MAX_FRAMES);
    const frames: ReplayFrame[] = [];
    for (const r of rows) {
      const f = frameOf(r);
      if (f) frames.push(f);
    }
    return {
      keyframe: kf ? { seq: kf.seq, tUs: kf.tUs, cols: kf.cols, rows: kf.rows, snapshot: kf.snapshot } : null,
      frames,
      // every terminal frame after this seq is later than the target
      seq: rows.length ? rows[rows.length - 1].seq : after,
    };
  }

  /** Terminal frames after a seq, for continuous playback. */
  frames(sessionId: string, afterSeq: number, limit = 2000): FramesResult {
    const n = Math.min(Math.max(limit, 1), MAX_FRAMES);
    const rows = terminalEventsAfter(this.db, sessionId, afterSeq, n + 1);
    const frames: ReplayFrame[] = [];
    for (const r of rows.slice(0, n)) {
      const f = frameOf(r);
      if (f) frames.push(f);
    }
    return { frames, more: rows.length > n };
  }

  close(): void {
    for (const idx of this.cache.values()) idx.dispose();
    this.cache.clear();
  }
}
