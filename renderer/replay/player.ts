/**
 * The replay engine: a clock that advances at 0.25×–16×, skips idle gaps, and feeds terminal
 * frames to xterm in one batched write per animation frame. A seek asks the gateway for the
 * nearest keyframe (a serialized screen) plus the frames after it, so it costs one keyframe
 * interval, not a replay from the start. Every byte passes the control-string filter first.
 */
import type { Terminal } from '@xterm/xterm';
import type { ReplayFrame, ReplayIndex } from '../../gateway/common/replay-types';
import { TerminalFilter } from '../../gateway/common/terminal-filter';
import { api } from '../api';

/** gaps longer than this (recording time) are cut short when idle skipping is on */
export const IDLE_GAP_US = 2_000_000;
/** what remains of a skipped gap, so the viewer still sees a pause */
const IDLE_KEEP_US = 400_000;
const REFILL_BELOW = 1500;

export const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16] as const;

export class ReplayPlayer {
  pos = 0;
  playing = false;
  speed = 1;
  skipIdle = true;
  lastSeekMs: number | null = null;
  /** seeks finished so far: lets a watcher tell this seek's result from the one before */
  seeks = 0;
  seeking = false;
  /** the position the newest seek is heading for (steps chain from it, not from a stale pos) */
  target: number | null = null;
  error: string | null = null;
  private buffer: ReplayFrame[] = [];
  private nextSeq = 0;
  private exhausted = false;
  private fetching = false;
  private filter = new TerminalFilter();
  private generation = 0;
  private lastTick = 0;
  private raf = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly sessionId: string,
    private index: ReplayIndex,
    private readonly term: Terminal | null,
  ) {}

  get durationUs(): number {
    return this.index.durationUs;
  }

  /** The index grew (a live session): playback may continue past the old end. */
  updateIndex(index: ReplayIndex): void {
    this.index = index;
    this.exhausted = false;
    void this.refill();
    this.emit();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const f of this.listeners) f();
  }

  play(): void {
    if (this.playing) return;
    if ((this.target ?? this.pos) >= this.durationUs) void this.seek(0);
    this.playing = true;
    this.lastTick = performance.now();
    this.raf = requestAnimationFrame(this.tick);
    this.emit();
  }

  pause(): void {
    this.playing = false;
    cancelAnimationFrame(this.raf);
    this.emit();
  }

  setSpeed(s: number): void {
    this.speed = s;
    this.emit();
  }

  setSkipIdle(on: boolean): void {
    this.skipIdle = on;
    this.emit();
  }

  /** Restores the screen at tUs: keyframe, then the frames up to tUs. Resolves once xterm has parsed it. */
  async seek(tUs: number): Promise<void> {
    const gen = ++this.generation;
    const target = Math.max(0, Math.min(tUs, this.durationUs));
    this.target = target;
    this.seeking = true;
    this.emit();
    try {
      await this.restore(gen, target);
    } catch (err) {
      if (gen !== this.generation) return;
      this.seeking = false;
      this.target = null;
      this.error = err instanceof Error ? err.message : String(err);
      this.seeks++;
      this.emit();
    }
  }

  private async restore(gen: number, target: number): Promise<void> {
    const t0 = performance.now();
    if (!this.term) {
      this.pos = target;
      this.seeking = false;
      this.target = null;
      this.lastSeekMs = performance.now() - t0;
      this.seeks++;
      this.emit();
      return;
    }
    const r = await api.seek(this.sessionId, target);
    if (gen !== this.generation) return;
    const term = this.term;
    term.reset();
    this.filter = new TerminalFilter();
    const kf = r.keyframe;
    resize(term, kf ? kf.cols : this.index.cols, kf ? kf.rows : this.index.rows);
    let text = kf ? new TerminalFilter().push(kf.snapshot) : '';
    for (const f of r.frames) {
      if (f.k === 'r') {
        if (text) term.write(text);
        text = '';
        await drain(term);
        resize(term, f.cols, f.rows);
      } else {
        text += this.filter.push(f.d);
      }
    }
    await new Promise<void>((resolve) => term.write(text, resolve));
    if (gen !== this.generation) return;
    this.pos = target;
    this.buffer = [];
    this.nextSeq = r.seq;
    this.exhausted = false;
    this.seeking = false;
    this.target = null;
    this.error = null;
    this.lastSeekMs = performance.now() - t0;
    this.seeks++;
    this.lastTick = performance.now();
    this.emit();
    void this.refill();
  }

  private async refill(): Promise<void> {
    if (!this.term || this.fetching || this.exhausted || this.buffer.length >= REFILL_BELOW) return;
    this.fetching = true;
    const gen = this.generation;
    try {
      const r = await api.frames(this.sessionId, this.nextSeq, 3000);
      if (gen !== this.generation) return;
      this.buffer.push(...r.frames);
      if (r.frames.length) this.nextSeq = r.frames[r.frames.length - 1].seq;
      if (!r.more || r.frames.length === 0) this.exhausted = true;
    } finally {
      this.fetching = false;
    }
    if (this.buffer.length < REFILL_BELOW && !this.exhausted) void this.refill();
  }

  /** Recording time of the next thing that happens after pos (frame or marker), for idle skipping. */
  private nextEventUs(markers: number[]): number | null {
    const f = this.buffer[0]?.tUs ?? null;
    let m: number | null = null;
    for (const x of markers) if (x > this.pos) { m = x; break; }
    if (f === null) return m;
    return m === null ? f : Math.min(f, m);
  }

  /** command start times, sorted: idle skipping and protocol replays step through them */
  markers: number[] = [];

  private readonly tick = (now: number): void => {
    if (!this.playing) return;
    const dt = Math.min(now - this.lastTick, 250);
    this.lastTick = now;
    if (!this.seeking) {
      this.pos += dt * 1000 * this.speed;
      if (this.skipIdle) {
        const next = this.nextEventUs(this.markers);
        if (next !== null && next - this.pos > IDLE_GAP_US) this.pos = next - IDLE_KEEP_US;
      }
      if (this.term) this.writeDue();
      if (this.pos >= this.durationUs && (this.exhausted || !this.term) && this.buffer.length === 0) {
        this.pos = this.durationUs;
        this.playing = false;
        this.emit();
        return;
      }
      this.emit();
    }
    this.raf = requestAnimationFrame(this.tick);
  };

  /** Writes every frame due by now in one batch (Hyper-style ~16 ms batching). */
  private writeDue(): void {
    const term = this.term as Terminal;
    let text = '';
    let i = 0;
    while (i < this.buffer.length && this.buffer[i].tUs <= this.pos) {
      const f = this.buffer[i++];
      if (f.k === 'r') {
        if (text) term.write(text);
        text = '';
        resize(term, f.cols, f.rows);
      } else {
        text += this.filter.push(f.d);
      }
    }
    if (i) this.buffer.splice(0, i);
    if (text) term.write(text);
    if (this.buffer.length < REFILL_BELOW) void this.refill();
  }

  dispose(): void {
    this.pause();
    this.generation++;
    this.listeners.clear();
  }
}

function resize(term: Terminal, cols: number, rows: number): void {
  if (term.cols !== cols || term.rows !== rows) term.resize(cols, rows);
}

function drain(term: Terminal): Promise<void> {
  return new Promise((resolve) => term.write('', resolve));
}
