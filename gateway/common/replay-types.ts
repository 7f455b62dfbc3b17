/**
 * The replay routes' result types, shared by the gateway and the renderer (type-only import).
 * Routes (bearer token like the rest of the control API):
 *   GET /api/sessions/:id/replay                          → ReplayIndex
 *   GET /api/sessions/:id/replay/seek?tUs=T               → SeekResult
 *   GET /api/sessions/:id/replay/frames?afterSeq=S&limit=N → FramesResult
 * Pure types.
 */

/** A terminal snapshot taken while indexing, so a seek starts near its target instead of at seq 1. */
export interface KeyframeRef {
  seq: number;
  tUs: number;
}

export interface ReplayIndex {
  sessionId: string;
  /** true when the session carries terminal output (an SSH shell or exec) */
  terminal: boolean;
  /** terminal size at the start of the recording */
  cols: number;
  rows: number;
  /** time offset of the last event, microseconds */
  durationUs: number;
  lastSeq: number;
  keyframes: KeyframeRef[];
  /** terminal output bytes indexed */
  outputBytes: number;
}

/** One step of terminal playback: output text or a resize. Output is unfiltered recorded text (masked): filter before display. */
export type ReplayFrame =
  | { seq: number; tUs: number; k: 'o'; d: string }
  | { seq: number; tUs: number; k: 'r'; cols: number; rows: number };

export interface SeekResult {
  /** the nearest keyframe at or before the target; null: start from a blank terminal */
  keyframe: (KeyframeRef & { cols: number; rows: number; snapshot: string }) | null;
  /** frames after the keyframe up to and including the target time */
  frames: ReplayFrame[];
  /** seq of the last frame applied (or of the keyframe): where playback continues */
  seq: number;
}

export interface FramesResult {
  frames: ReplayFrame[];
  more: boolean;
}
