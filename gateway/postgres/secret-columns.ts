/**
 * Structural masking for the Postgres recording path. The recorder masks what it is given by
 * text rules alone; here the wire's structure supplies the key a value sits under — a result
 * column's name, the column a literal or bind parameter is written to, a role's PASSWORD — so a
 * value with no recognisable shape (`Xq7-plain-pw-91` in a `password` column) is masked whole,
 * the way `flightlog mask` masks it under a JSON key.
 */
import type { Json, Masker } from '../common/types';
import { classifySecretKey } from '../masking/keys';
import type { SecretCopy, SecretLiteral, StatementInfo } from './sql-info';

/** One secret value seen by position: its finding, and the raw value so errors quoting it can be scrubbed. */
export interface Sighting {
  kind: string;
  fp: string;
  column: string;
  raw: string;
}

/**
 * Column lists of tables, per connection, learned from traffic (CREATE TABLE, SELECT * FROM t):
 * what an INSERT without a column list needs to know where its values go. Bounded; a table
 * altered through the gateway is forgotten until seen again.
 */
const learned = new Map<string, string[]>();
const MAX_LEARNED = 10_000;

export function learnTable(connection: string, table: string, columns: string[]): void {
  if (learned.size >= MAX_LEARNED) learned.clear();
  learned.set(`${connection}\0${table}`, columns);
}

export function forgetTable(connection: string, table: string): void {
  learned.delete(`${connection}\0${table}`);
}

/** The statement as a plain INSERT with its column list, where the table's columns are known and include a secret one. */
export function withLearnedColumns(connection: string, info: StatementInfo): { literals: SecretLiteral[]; params: Array<{ index: number; column: string }> } | null {
  const pos = info.insertPositional;
  const cols = pos ? learned.get(`${connection}\0${pos.table}`) : undefined;
  if (!pos || !cols || !cols.some(isSecretColumn)) return null;
  const literals: SecretLiteral[] = [];
  const params: Array<{ index: number; column: string }> = [];
  pos.positions.forEach((p, i) => {
    const column = cols[i];
    if (column === undefined || !isSecretColumn(column)) return;
    for (const l of p.literals) literals.push({ ...l, column });
    for (const index of p.params) params.push({ index, column });
  });
  return { literals, params };
}

/** A COPY's column list: as written, or the table's learned columns; null when no column is secret. */
export function copyColumns(connection: string, spec: SecretCopy | undefined): SecretCopy | null {
  if (!spec) return null;
  if (spec.columns.length) return spec;
  const cols = spec.table ? learned.get(`${connection}\0${spec.table}`) : undefined;
  return cols && cols.some(isSecretColumn) ? { ...spec, columns: cols } : null;
}

/** Whether a column (or key) name marks its values as secrets. */
export function isSecretColumn(name: string): boolean {
  return classifySecretKey(name) !== null;
}

/**
 * Masks one value under a column name. Returns the masked value, and pushes what was masked
 * whole onto `into`; values the key does not make secret (a placeholder, a non-random value
 * under a weak key) come back as they were, for the recorder's text rules.
 */
export function maskUnder(masker: Masker, value: Json, column: string, into: Sighting[]): Json {
  if (value === null || (typeof value !== 'string' && typeof value !== 'number')) return value;
  const r = masker.maskValue(value, column);
  if (r.value === value) return value;
  const raw = String(value);
  for (const h of r.hits) into.push({ kind: h.kind, fp: h.fp, column, raw });
  return r.value;
}

/** The statement text with every secret literal replaced by its quoted placeholder. */
export function maskStatementText(masker: Masker, info: StatementInfo, into: Sighting[]): string {
  const lits = info.secretLiterals;
  if (!lits || lits.length === 0) return info.text;
  let out = '';
  let last = 0;
  for (const l of lits) {
    const masked = maskUnder(masker, l.value, l.column, into);
    if (masked === l.value) continue;
    out += info.text.slice(last, l.start) + quote(String(masked));
    last = l.end;
  }
  return out + info.text.slice(last);
}

/** EXECUTE name('a', 'b'): the arguments bound to secret parameters of a PREPAREd statement. */
export function maskExecuteText(
  masker: Masker,
  text: string,
  args: NonNullable<StatementInfo['execute']>['args'],
  secretParams: Array<{ index: number; column: string }>,
  into: Sighting[],
): string {
  let out = '';
  let last = 0;
  for (const a of args) {
    const p = secretParams.find((s) => s.index === a.index);
    if (!p || a.start < last) continue;
    const masked = maskUnder(masker, a.value, p.column, into);
    if (masked === a.value) continue;
    out += text.slice(last, a.start) + quote(String(masked));
    last = a.end;
  }
  return out + text.slice(last);
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Bind parameters with those written to secret columns masked. */
export function maskParams(masker: Masker, params: Json[], secret: Array<{ index: number; column: string }> | undefined, into: Sighting[]): Json[] {
  if (!secret || secret.length === 0) return params;
  const out = params.slice();
  for (const s of secret) {
    const i = s.index - 1;
    if (i >= 0 && i < out.length) out[i] = maskUnder(masker, out[i], s.column, into);
  }
  return out;
}

/**
 * COPY data (text or CSV) with a column list: the fields of secret columns masked, line by line.
 * A line cut off by the recording head is masked as far as it goes.
 */
export function maskCopyText(masker: Masker, data: string, spec: SecretCopy, into: Sighting[], skipHeader: boolean): string {
  if (spec.binary) return data.length ? BINARY_COPY_NOTE : data;
  const secretAt = spec.columns.map((c) => (isSecretColumn(c) ? c : null));
  const lines = data.split('\n');
  for (let n = skipHeader && spec.header ? 1 : 0; n < lines.length; n++) {
    const line = lines[n];
    if (line === '' || line === '\\.' || line === '\r') continue;
    const fields = spec.csv ? splitCsv(line, spec.delimiter) : line.split(spec.delimiter);
    let changed = false;
    for (let i = 0; i < fields.length && i < secretAt.length; i++) {
      const col = secretAt[i];
      if (!col) continue;
      const f = fields[i];
      const value = spec.csv ? unquoteCsv(f) : f.replace(/\r$/, '');
      if (value === '' || (!spec.csv && value === '\\N')) continue;
      const masked = maskUnder(masker, value, col, into);
      if (masked !== value) {
        fields[i] = String(masked) + (!spec.csv && f.endsWith('\r') ? '\r' : '');
        changed = true;
      }
    }
    if (changed) lines[n] = fields.join(spec.delimiter);
  }
  return lines.join('\n');
}

const BINARY_COPY_NOTE = '[binary COPY data with secret columns: not recorded]';

function splitCsv(line: string, delimiter: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuotes = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') inQuotes = !inQuotes;
    if (!inQuotes && line.startsWith(delimiter, i)) {
      out.push(cur);
      cur = '';
      i += delimiter.length - 1;
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

function unquoteCsv(f: string): string {
  const t = f.replace(/\r$/, '');
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/""/g, '"');
  return t;
}

/** Replaces every raw secret value quoted in a server message (an error citing the bad value) by its placeholder. */
export function scrubMessage(text: string, sightings: readonly Sighting[]): string {
  let out = text;
  for (const s of sightings) {
    if (s.raw.length < 4 || !out.includes(s.raw)) continue;
    out = out.split(s.raw).join(`[MASKED:${s.kind}:${s.fp}]`);
  }
  return out;
}
