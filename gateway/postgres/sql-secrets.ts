/**
 * Where a parsed statement puts secrets: literals and bind parameters bound for secret-named
 * columns or options, result columns computed from secret columns, COPY column lists, and the
 * table facts (CREATE TABLE, SELECT *) that let the relay place an INSERT naming no columns.
 * Positions are UTF-16 offsets in the statement's text, found from the parse tree's byte offsets.
 */
import { classifySecretKey } from '../masking/keys';
import type { SecretCopy, SecretLiteral, StatementInfo } from './sql-info';

export type Node = { [key: string]: unknown };

/** Walks any parse-tree value, calling visit(nodeName, node) for each named node. */
export function walk(value: unknown, visit: (name: string, node: Node) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, visit);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Node)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && /^[A-Z]/.test(k)) visit(k, v as Node);
    walk(v, visit);
  }
}

function isSecretName(name: unknown): name is string {
  return typeof name === 'string' && classifySecretKey(name) !== null;
}

interface RawLiteral {
  /** byte offset of the token (or, with `after`, of the keyword it follows) in the whole query string */
  loc: number;
  /** the literal is the first one after `loc` (DefElem: `PASSWORD 'x'`, `OPTIONS (password 'x')`) */
  after: boolean;
  column: string;
  value: string;
}

interface RawSecrets {
  literals: RawLiteral[];
  params: Array<{ index: number; column: string }>;
}

function constValue(c: Node): string | null {
  if (c.isnull) return null;
  const v = (c.sval ?? c.ival ?? c.fval ?? c.bsval ?? c.boolval) as Node | undefined;
  if (!v) return null;
  const inner = v.sval ?? v.ival ?? v.fval ?? v.bsval ?? v.boolval;
  // libpg-query leaves out zero and false
  return inner === undefined ? (c.ival ? '0' : c.boolval ? 'false' : null) : String(inner);
}

function lastField(ref: Node | undefined): string | null {
  const fields = (ref?.fields ?? []) as Node[];
  const last = fields[fields.length - 1] as Node | undefined;
  const s = (last?.String as Node | undefined)?.sval;
  return typeof s === 'string' ? s : null;
}

/** Literals and parameters inside a value expression bound for `column` (subqueries excluded). */
function harvest(value: unknown, column: string, out: RawSecrets): void {
  if (Array.isArray(value)) {
    for (const v of value) harvest(v, column, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Node)) {
    if (k === 'SubLink' || v === null || typeof v !== 'object') continue;
    if (k === 'A_Const') {
      const c = v as Node;
      const val = constValue(c);
      if (val !== null && typeof c.location === 'number') out.literals.push({ loc: c.location, after: false, column, value: val });
      continue;
    }
    if (k === 'ParamRef') {
      const n = (v as Node).number;
      if (typeof n === 'number') out.params.push({ index: n, column });
      continue;
    }
    harvest(v, column, out);
  }
}

function collectSecrets(stmt: Node): RawSecrets {
  const out: RawSecrets = { literals: [], params: [] };
  walk(stmt, (name, node) => {
    if (name === 'InsertStmt') {
      const cols = ((node.cols ?? []) as Node[]).map((c) => (c.ResTarget as Node | undefined)?.name);
      if (!cols.some(isSecretName)) return;
      const sel = (node.selectStmt as Node | undefined)?.SelectStmt as Node | undefined;
      if (!sel) return;
      const rows = ((sel.valuesLists ?? []) as Node[]).map((l) => ((l.List as Node | undefined)?.items ?? []) as unknown[]);
      const targetList = sel.targetList as Node[] | undefined;
      if (targetList) rows.push(targetList.map((t) => (t.ResTarget as Node | undefined)?.val));
      for (const row of rows) {
        row.forEach((v, i) => {
          const col = cols[i];
          if (isSecretName(col)) harvest(v, col, out);
        });
      }
    } else if (name === 'ResTarget') {
      // UPDATE … SET col = …, ON CONFLICT … SET col = …, SELECT … AS col
      if (node.val !== undefined && isSecretName(node.name)) harvest(node.val, node.name, out);
    } else if (name === 'A_Expr') {
      const l = node.lexpr as Node | undefined;
      const r = node.rexpr as Node | undefined;
      const lc = lastField(l?.ColumnRef as Node | undefined);
      const rc = lastField(r?.ColumnRef as Node | undefined);
      if (isSecretName(lc)) harvest(r, lc, out);
      if (isSecretName(rc)) harvest(l, rc, out);
    } else if (name === 'VariableSetStmt') {
      // SET app.api_key = '…'
      if (isSecretName(node.name)) harvest(node.args, node.name, out);
    } else if (name === 'DefElem') {
      // ROLE … PASSWORD '…', USER MAPPING … OPTIONS (password '…'); the String node has no location
      const arg = (node.arg as Node | undefined)?.String as Node | undefined;
      if (isSecretName(node.defname) && typeof arg?.sval === 'string' && typeof node.location === 'number') {
        out.literals.push({ loc: node.location, after: true, column: node.defname, value: arg.sval });
      }
    }
  });
  return out;
}

/** End (exclusive) of the literal token starting at `i`, or -1 when `i` does not start a literal this scanner reads. */
export function literalEnd(text: string, i: number): number {
  const c = text[i];
  const quoted = (from: number, backslash: boolean): number => {
    for (let j = from; j < text.length; j++) {
      const ch = text[j];
      if (backslash && ch === '\\') j++;
      else if (ch === "'") {
        if (text[j + 1] === "'") j++;
        else return j + 1;
      }
    }
    return -1;
  };
  if (c === "'") return quoted(i + 1, false);
  if ((c === 'E' || c === 'e') && text[i + 1] === "'") return quoted(i + 2, true);
  if ((c === 'N' || c === 'n') && text[i + 1] === "'") return quoted(i + 2, false);
  if ((c === 'U' || c === 'u') && text[i + 1] === '&' && text[i + 2] === "'") return quoted(i + 3, false);
  if (c === '$') {
    const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 66));
    if (!m) return -1;
    const close = text.indexOf(m[0], i + m[0].length);
    return close < 0 ? -1 : close + m[0].length;
  }
  const num = /^[-+]?(?:0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)/.exec(text.slice(i, i + 200));
  return num ? i + num[0].length : -1;
}

/** Start of the first literal after `from`, skipping only words, blanks and comments; -1 if none. */
function nextLiteral(text: string, from: number): number {
  let i = from;
  const limit = Math.min(text.length, from + 400);
  while (i < limit) {
    const c = text[i];
    if (/\s/.test(c)) i++;
    else if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (text.startsWith('/*', i)) {
      const e = text.indexOf('*/', i + 2);
      if (e < 0) return -1;
      i = e + 2;
    } else if (c === "'" || c === '$') return i;
    else if (/[A-Za-z_]/.test(c)) {
      if (literalEnd(text, i) > i && /['&]/.test(text[i + 1])) return i;
      while (i < limit && /[A-Za-z0-9_]/.test(text[i])) i++;
    } else if (c === '=' || c === '(') i++;
    else return -1;
  }
  return -1;
}

/** Places raw literal positions in `text` (which starts at byte `base` of the query string). */
function placeLiterals(raw: RawLiteral[], bytes: Buffer, ascii: boolean, base: number, text: string): SecretLiteral[] {
  const out: SecretLiteral[] = [];
  for (const r of raw) {
    if (r.loc < base) continue;
    const at = ascii ? r.loc - base : bytes.toString('utf8', base, r.loc).length;
    const start = r.after ? nextLiteral(text, at) : at;
    if (start < 0) continue;
    const end = literalEnd(text, start);
    if (end > start) out.push({ start, end, column: r.column, value: r.value });
  }
  out.sort((a, b) => a.start - b.start);
  // a literal reached twice (a ResTarget inside an INSERT … SELECT) counts once
  return out.filter((l, i) => i === 0 || l.start >= out[i - 1].end);
}

/** The first secret column an expression reads, or null. */
function secretColumnIn(expr: unknown): string | null {
  let found: string | null = null;
  walk(expr, (name, node) => {
    if (found === null && name === 'ColumnRef') {
      const f = lastField(node);
      if (isSecretName(f)) found = f;
    }
  });
  return found;
}

/** Output columns that carry a secret column's value, by position, up to the first `*`. */
function secretResultsOf(stmt: Node): Array<{ index: number; column: string }> | undefined {
  const top = (stmt.SelectStmt ?? stmt.InsertStmt ?? stmt.UpdateStmt ?? stmt.DeleteStmt) as Node | undefined;
  if (!top) return undefined;
  // RETURNING is returningList up to PostgreSQL 17's grammar, returningClause.exprs from 18's
  const list = (stmt.SelectStmt ? top.targetList : top.returningList ?? (top.returningClause as Node | undefined)?.exprs) as Node[] | undefined;
  if (!list) return undefined;
  const out: Array<{ index: number; column: string }> = [];
  for (let i = 0; i < list.length; i++) {
    const t = list[i].ResTarget as Node | undefined;
    // a * before this entry makes its position in the result unknown
    if (!t || JSON.stringify(t.val ?? null).includes('"A_Star"')) break;
    const col = secretColumnIn(t.val);
    if (col) out.push({ index: i, column: col });
  }
  return out.length ? out : undefined;
}

function copySpec(stmt: Node): SecretCopy | undefined {
  const copy = stmt.CopyStmt as Node | undefined;
  if (!copy || copy.filename !== undefined || copy.query !== undefined) return undefined;
  const columns = ((copy.attlist ?? []) as Node[]).map((a) => (a.String as Node | undefined)?.sval).filter((s): s is string => typeof s === 'string');
  const table = columns.length === 0 ? tableKey(copy.relation as Node | undefined) : null;
  if (!columns.some(isSecretName) && !table) return undefined;
  let csv = false;
  let binary = false;
  let delimiter: string | null = null;
  let header = false;
  for (const o of (copy.options ?? []) as Node[]) {
    const d = o.DefElem as Node | undefined;
    if (!d) continue;
    const arg = (d.arg as Node | undefined)?.String as Node | undefined;
    const sval = typeof arg?.sval === 'string' ? arg.sval : null;
    if (d.defname === 'format') {
      csv = sval?.toLowerCase() === 'csv';
      binary = sval?.toLowerCase() === 'binary';
    } else if (d.defname === 'binary') binary = true;
    else if (d.defname === 'csv') csv = true;
    else if (d.defname === 'delimiter' && sval) delimiter = sval;
    else if (d.defname === 'header') header = sval === null || !/^(false|off|0)$/i.test(sval);
  }
  const spec: SecretCopy = { columns, csv, binary, delimiter: delimiter ?? (csv ? ',' : '\t'), header };
  if (table) spec.table = table;
  return spec;
}

/** A table's name as a key: `public.` is the default schema, so `public.t` and `t` are one table. */
function tableKey(rv: Node | undefined): string | null {
  if (!rv || typeof rv.relname !== 'string') return null;
  const schema = typeof rv.schemaname === 'string' && rv.schemaname !== 'public' ? `${rv.schemaname}.` : '';
  return schema + rv.relname;
}

/** Table facts and VALUES positions: what lets the relay mask an INSERT that names no columns. */
function tableFacts(stmt: Node, bytes: Buffer, ascii: boolean, base: number, text: string): Partial<StatementInfo> {
  const create = stmt.CreateStmt as Node | undefined;
  if (create) {
    const table = tableKey(create.relation as Node | undefined);
    const columns = ((create.tableElts ?? []) as Node[]).map((e) => (e.ColumnDef as Node | undefined)?.colname).filter((c): c is string => typeof c === 'string');
    return table && columns.length && !create.inhRelations && !create.ofTypename ? { tableColumns: { table, columns } } : {};
  }
  const alter = (stmt.AlterTableStmt ?? stmt.RenameStmt) as Node | undefined;
  if (alter) {
    const table = tableKey(alter.relation as Node | undefined);
    return table ? { alteredTable: table } : {};
  }
  const sel = stmt.SelectStmt as Node | undefined;
  if (sel) {
    const list = (sel.targetList ?? []) as Node[];
    const from = (sel.fromClause ?? []) as Node[];
    const only = list.length === 1 ? (((list[0].ResTarget as Node | undefined)?.val as Node | undefined)?.ColumnRef as Node | undefined) : undefined;
    const fields = (only?.fields ?? []) as Node[];
    const star = fields.length === 1 && 'A_Star' in fields[0] && !sel.withClause;
    const table = from.length === 1 ? tableKey(from[0].RangeVar as Node | undefined) : null;
    return star && table ? { selectStarFrom: table } : {};
  }
  const ins = stmt.InsertStmt as Node | undefined;
  if (!ins || ins.cols) return {};
  const table = tableKey(ins.relation as Node | undefined);
  const rows = ((((ins.selectStmt as Node | undefined)?.SelectStmt as Node | undefined)?.valuesLists ?? []) as Node[]).map((l) => ((l.List as Node | undefined)?.items ?? []) as unknown[]);
  if (!table || rows.length === 0) return {};
  const positions: NonNullable<StatementInfo['insertPositional']>['positions'] = [];
  for (const row of rows) {
    row.forEach((v, i) => {
      const raw: RawSecrets = { literals: [], params: [] };
      harvest(v, '', raw);
      const p = (positions[i] ??= { literals: [], params: [] });
      for (const l of placeLiterals(raw.literals, bytes, ascii, base, text)) p.literals.push({ start: l.start, end: l.end, value: l.value });
      for (const q of raw.params) p.params.push(q.index);
    });
  }
  return { insertPositional: { table, positions } };
}

/**
 * Every name the key classifier calls secret contains one of these, and a name the tree holds
 * is spelled in the text: a statement without any (most of them) skips the tree walks.
 */
const SECRET_WORD = /pass|pwd|secret|token|cred|key|auth|sessionid|dsn|cookie/i;

/** Where a statement puts secrets, and what it tells of tables: the fields StatementInfo adds for the relay. */
export function secretsOf(stmt: Node, bytes: Buffer, ascii: boolean, base: number, text: string): Partial<StatementInfo> {
  const extra: Partial<StatementInfo> = {};
  const prep = stmt.PrepareStmt as Node | undefined;
  const exec = stmt.ExecuteStmt as Node | undefined;
  const named = SECRET_WORD.test(text);
  Object.assign(extra, tableFacts(stmt, bytes, ascii, base, text));
  const copy = copySpec(stmt);
  if (copy) extra.secretCopy = copy;
  const raw = named ? collectSecrets(prep ? ((prep.query ?? {}) as Node) : stmt) : { literals: [], params: [] };
  if (prep && typeof prep.name === 'string') {
    extra.prepare = { name: prep.name, secretParams: raw.params };
  } else if (raw.params.length) {
    extra.secretParams = raw.params;
  }
  if (exec && typeof exec.name === 'string') {
    const args: Array<{ index: number; start: number; end: number; value: string }> = [];
    ((exec.params ?? []) as Node[]).forEach((p, i) => {
      const c = p.A_Const as Node | undefined;
      const val = c ? constValue(c) : null;
      if (val === null || typeof c?.location !== 'number' || c.location < base) return;
      const start = ascii ? c.location - base : bytes.toString('utf8', base, c.location).length;
      const end = literalEnd(text, start);
      if (end > start) args.push({ index: i + 1, start, end, value: val });
    });
    if (args.length) extra.execute = { name: exec.name, args };
  }
  if (!named) return extra;
  const lits = placeLiterals(raw.literals, bytes, ascii, base, text);
  if (lits.length) extra.secretLiterals = lits;
  const results = secretResultsOf(prep ? ((prep.query ?? {}) as Node) : stmt);
  if (results) extra.secretResults = results;
  return extra;
}
