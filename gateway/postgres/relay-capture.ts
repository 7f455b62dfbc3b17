/**
 * Result capture: what the relay keeps of one command's answer — the head rows (masked by
 * column name and by the text rules), the columns, the row count and command tag, a hash of
 * every row — and the recorded result built from it. Never one event per row.
 */
import { createHash, type Hash } from 'node:crypto';
import type { CommandHandle, CommandStatus, Json, Masker } from '../common/types';
import { decodeDataRow, encodeDataRow, renderValue, type Column } from './server-messages';
import * as wire from './wire';
import { isSecretColumn, maskCopyText, maskUnder, scrubMessage, type Sighting } from './secret-columns';
import type { SecretCopy, StatementInfo } from './sql-info';

/** A statement as it is recorded: its text with secret literals masked, and what was masked. */
export interface Recordable {
  info: StatementInfo;
  text: string;
  sightings: Sighting[];
  /** bind parameters bound for secret columns (from the statement, or the table's learned columns) */
  secretParams?: Array<{ index: number; column: string }>;
}

export interface Prepared {
  sql: string;
  rec: Recordable;
  paramTypes: number[];
  columns: Column[] | null;
}

export interface Portal {
  stmt: Prepared | null;
  params: Json[];
  /** bind parameters masked because of the column they go to */
  sightings: Sighting[];
  resultFormats: number[];
  columns: Column[] | null;
}

/** Which result columns hold secrets by name (null: none), per RowDescription. */
const secretColumnsOf = new WeakMap<Column[], (string | null)[] | null>();
function secretColumns(cols: Column[]): (string | null)[] | null {
  let s = secretColumnsOf.get(cols);
  if (s === undefined) {
    const names = cols.map((c) => (isSecretColumn(c.name) ? c.name : null));
    s = names.some((n) => n !== null) ? names : null;
    secretColumnsOf.set(cols, s);
  }
  return s;
}

/** Distinct secrets reported per result: enough for findings, bounded for huge results. */
export const MAX_RESULT_SIGHTINGS = 1000;

/** One recorded command in flight. */
export class Running {
  /** set once the command is recorded, right after its bytes went upstream */
  handle: CommandHandle | null = null;
  /** transaction status at the ReadyForQuery that ended it */
  txStatus: string | null = null;
  columns: Column[] | null = null;
  rows: Json[] = [];
  rowCount = 0;
  hash: Hash | null = null;
  tag: string | null = null;
  error: string | null = null;
  notices: string[] | null = null;
  status: CommandStatus = 'running';
  suspended = false;
  copy: 'in' | 'out' | null = null;
  copyBytes = 0;
  copyHead = '';
  /** secrets the client sent, found by position (literals, parameters, COPY data) */
  sightingsIn: Sighting[] = [];
  /** secrets in the result, found by column name */
  sightingsOut: Sighting[] = [];
  private outSeen: Set<string> | null = null;
  /** SELECT * FROM this table: its result columns are the table's, learned once it succeeds */
  selectStarFrom: string | null = null;
  /** result columns that hold secrets (by name or by what they compute), once the columns are known */
  secretCols: { cols: Column[] | null; names: (string | null)[] | null } | null = null;
  constructor(
    readonly params: Json[] | null,
    readonly portal: Portal | null,
    readonly copySpec: SecretCopy | null = null,
    readonly secretResults: StatementInfo['secretResults'] = undefined,
  ) {}

  sawOut(found: Sighting[]): void {
    for (const f of found) {
      const key = `${f.kind}|${f.fp}`;
      this.outSeen ??= new Set();
      if (this.outSeen.has(key) || this.outSeen.size >= MAX_RESULT_SIGHTINGS) continue;
      this.outSeen.add(key);
      this.sightingsOut.push({ ...f, raw: '' });
    }
  }
}

/** How a relay captures rows: its masker, whether it masks on the wire, and its size limits. */
export interface CaptureOptions {
  masker: Masker;
  /** mask the bytes the client gets, not only the record */
  live: boolean;
  /** rows kept per result */
  headRows: number;
  /** bytes kept per rendered value */
  maxValue: number;
}

/**
 * Captures one DataRow into the run's head rows (masked); returns the row re-encoded when live
 * masking changed what the client gets, or null to forward it as is.
 */
export function captureRow(o: CaptureOptions, run: Running, buf: Buffer, start: number, end: number): Buffer | null {
  const values = decodeDataRow(buf, start + 5, end);
  const cols = run.columns ?? portalColumns(run);
  run.columns = cols;
  const secret = secretColumnsFor(run, cols);
  let changed = false;
  const row: Json[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const col = cols?.[i];
    const format = col?.format ?? 0;
    const under = secret?.[i];
    if (under && v !== null) {
      // masked whole by the column's name, from the full value (the rendered one may be cut)
      const rendered = renderValue(v, format, col?.typeOid ?? 0, o.maxValue);
      const value = typeof rendered === 'string' && format === 0 ? v.toString('utf8') : rendered;
      const found: Sighting[] = [];
      const masked = maskUnder(o.masker, value, under, found);
      if (masked !== value) {
        run.sawOut(found);
        row[i] = masked;
        if (o.live && format === 0) {
          values[i] = Buffer.from(String(masked), 'utf8');
          changed = true;
        }
        continue;
      }
      // a value its column does not make secret (a placeholder, a plain word under a weak key) goes on to the text rules
    }
    if (o.live && v !== null && format === 0) {
      const text = v.toString('utf8');
      const masked = o.masker.maskText(text).text;
      if (masked !== text) {
        values[i] = Buffer.from(masked, 'utf8');
        changed = true;
      }
    }
    row[i] = renderValue(values[i], format, col?.typeOid ?? 0, o.maxValue);
  }
  if (run.rows.length < o.headRows) run.rows.push(row);
  return changed ? encodeDataRow(values) : null;
}

/** By name when a RowDescription came, and by what the statement's select list computes (even when none came). */
export function secretColumnsFor(run: Running, cols: Column[] | null): (string | null)[] | null {
  if (run.secretCols && run.secretCols.cols === cols) return run.secretCols.names;
  let names = cols ? secretColumns(cols) : null;
  if (run.secretResults) {
    const n = cols ? cols.length : Math.max(...run.secretResults.map((r) => r.index)) + 1;
    names = names ? names.slice() : new Array<string | null>(n).fill(null);
    for (const r of run.secretResults) if (r.index < names.length) names[r.index] ??= r.column;
  }
  run.secretCols = { cols, names };
  return names;
}

/** An Execute's columns: the portal's own Describe, or the statement's with the Bind's result formats. */
export function portalColumns(run: Running): Column[] | null {
  const p = run.portal;
  if (!p) return null;
  if (p.columns) return p.columns;
  const cols = p.stmt?.columns;
  if (!cols) return null;
  const f = p.resultFormats;
  return cols.map((c, i) => ({ ...c, format: f.length === 0 ? 0 : f.length === 1 ? f[0] : f[i] ?? 0 }));
}

const COUNTED_TAGS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'SELECT', 'COPY', 'FETCH', 'MOVE']);

/** The row count a CommandComplete tag carries (`INSERT 0 5` → 5), or null when it has none. */
export function tagRowCount(tag: string): number | null {
  const m = /^([A-Z]+)(?: \d+)? (\d+)$/.exec(tag);
  if (!m || !COUNTED_TAGS.has(m[1])) return null;
  const n = Number(m[2]);
  return Number.isSafeInteger(n) ? n : null;
}

/** The recorded result of a finished command; error, notices and COPY head come already scrubbed. */
export function resultOf(
  run: Running,
  r: { txStatus: string; sha256: string | null; error: string | null; notices: string[] | null; copyHead: string },
): { [k: string]: Json } {
  const result: { [k: string]: Json } = {
    columns: run.columns ? run.columns.map((c) => ({ name: c.name, type: c.typeOid })) : null,
    rows: run.rows,
    rowCount: run.rowCount,
    tag: run.tag,
    sha256: r.sha256,
    error: r.error,
    notices: r.notices,
    txStatus: r.txStatus,
    params: run.params,
  };
  if (run.suspended) result.suspended = true;
  if (run.copy) {
    result.copy = run.copy;
    result.copyBytes = run.copyBytes;
    if (run.copy === 'in') result.copyHead = r.copyHead;
  }
  return result;
}

/**
 * Captures one CopyData message (body bytes b..end) of a COPY: counted, hashed, its head kept
 * masked; returns the message re-encoded when live masking changed what the client gets.
 */
export function captureCopyData(o: CaptureOptions, run: Running, buf: Buffer, b: number, end: number): Buffer | null {
  run.rowCount++;
  run.copyBytes += end - b;
  if (!run.hash) run.hash = createHash('sha256');
  run.hash.update(buf.subarray(b, end));
  if (o.live) {
    const text = buf.toString('utf8', b, end);
    let masked = text;
    const spec = run.copySpec;
    if (spec && !spec.binary) {
      const found: Sighting[] = [];
      masked = maskCopyText(o.masker, text, spec, found, run.rowCount === 1);
      run.sawOut(found);
    }
    masked = o.masker.maskText(masked).text;
    if (run.rows.length < o.headRows) run.rows.push(spec?.binary ? maskCopyText(o.masker, masked, spec, [], false) : masked);
    if (masked !== text) return wire.message('d', Buffer.from(masked, 'utf8'));
  } else if (run.rows.length < o.headRows) {
    run.rows.push(buf.toString('utf8', b, Math.min(end, b + o.maxValue)));
  }
  return null;
}

/**
 * A finished command's recorded result: COPY heads masked by the columns they carry, and the
 * secrets the command sent scrubbed from the server's error and notices. `copyIn`: secrets
 * found in the COPY data the client sent, for findings.
 */
export function settleResult(o: CaptureOptions, run: Running, txStatus: string): { result: { [k: string]: Json }; sha256: string | null; error: string | null; copyIn: Sighting[] } {
  const sha256 = run.hash ? run.hash.digest('hex') : null;
  const copyIn: Sighting[] = [];
  let copyHead = run.copyHead;
  if (run.copySpec && run.copy === 'in') copyHead = maskCopyText(o.masker, copyHead, run.copySpec, copyIn, true);
  if (run.copySpec && run.copy === 'out' && !o.live) {
    const found: Sighting[] = [];
    run.rows = run.rows.map((r, i) => (typeof r === 'string' ? maskCopyText(o.masker, r, run.copySpec as SecretCopy, found, i === 0) : r));
    run.sawOut(found);
  }
  // a server error may quote the value it choked on: the secrets this command carried are scrubbed from it
  const scrub = run.sightingsIn.length || copyIn.length ? [...run.sightingsIn, ...copyIn] : null;
  const error = scrub && run.error ? scrubMessage(run.error, scrub) : run.error;
  const notices = scrub && run.notices ? run.notices.map((n) => scrubMessage(n, scrub)) : run.notices;
  return { result: resultOf(run, { txStatus, sha256, error, notices, copyHead }), sha256, error, copyIn };
}
