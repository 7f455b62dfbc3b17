/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/) from a recorded SSH session:
 * a header line, then `[seconds, code, data]` lines. The SSH listener records terminal traffic
 * as events with string data: `pty` {term, cols, rows}, `o` (stdout), `e` (stderr), `i` (input),
 * `r` ("COLSxROWS"). Masked data only: this reads the store, which never holds a raw secret.
 */
import type { Db } from '../store/db';
import { getSession } from '../store/queries';
import { BundleError } from './errors';
import { eventRows, writeOut } from './streams';

export interface AsciicastResult {
  events: number;
  bytes: number;
}

/** Writes one session as an asciicast v2 recording; refuses a session with no terminal output. */
export async function exportAsciicast(db: Db, sessionId: string, out: string): Promise<AsciicastResult> {
  const s = getSession(db, sessionId);
  // The header needs the size before any output line: find the first pty request.
  let width = 80;
  let height = 24;
  let term: string | null = null;
  let pty = false;
  let outputs = 0;
  for await (const e of eventRows(db, s.id)) {
    if (e.kind === 'pty' && !pty) {
      const d = parse(e.data);
      if (d && typeof d === 'object' && !Array.isArray(d)) {
        const o = d as Record<string, unknown>;
        if (isDim(o.cols)) width = o.cols;
        if (isDim(o.rows)) height = o.rows;
        if (typeof o.term === 'string') term = o.term;
        pty = true;
      }
    }
    if ((e.kind === 'o' || e.kind === 'e') && typeof parse(e.data) === 'string') outputs++;
  }
  if (outputs === 0) {
    throw new BundleError('E_EXPORT_FORMAT', `session ${s.id} (${s.protocol}) has no terminal output to export as asciicast; use --format jsonl${s.protocol === 'http' ? ' or har' : ''}`);
  }
  let count = 0;
  const bytes = await writeOut(out, async (f) => {
    const header: Record<string, unknown> = {
      version: 2,
      width,
      height,
      timestamp: Math.floor(Date.parse(s.startedAt) / 1000),
      title: `${s.identity ?? 'unknown'} → ${s.connection} (${s.id})`,
      env: { TERM: term ?? 'xterm-256color', SHELL: '/bin/sh' },
    };
    if (s.durationMs !== null) header.duration = s.durationMs / 1000;
    await f.write(JSON.stringify(header) + '\n');
    let last = 0;
    for await (const e of eventRows(db, s.id)) {
      let code: 'o' | 'i' | 'r';
      let data: string;
      const d = parse(e.data);
      if ((e.kind === 'o' || e.kind === 'e') && typeof d === 'string') {
        code = 'o';
        // without a pty the remote sends bare newlines; a terminal player needs CR LF
        data = pty ? d : d.replace(/\r?\n/g, '\r\n');
      } else if (e.kind === 'i' && typeof d === 'string') {
        code = 'i';
        data = d;
      } else if (e.kind === 'r' && typeof d === 'string' && /^\d+x\d+$/.test(d)) {
        code = 'r';
        data = d;
      } else {
        continue;
      }
      // times must not go backwards; t_us is monotonic per session but be defensive
      last = Math.max(last, e.t_us / 1e6);
      await f.write(JSON.stringify([Number(last.toFixed(6)), code, data]) + '\n');
      count++;
    }
  });
  return { events: count, bytes };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isDim(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 10000;
}
