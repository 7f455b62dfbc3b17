/**
 * Statement classification and touched tables, from libpg-query (the real PostgreSQL parser).
 * Parsing costs ~40 µs, so results are cached per text and, for simple texts, per "shape"
 * (literals replaced), which is what lets pgbench-style traffic with varying literals stay cheap.
 * Where a statement puts secrets comes from sql-secrets.ts, on the same parse.
 */
import * as pgQuery from 'libpg-query';
import { secretsOf, walk, type Node } from './sql-secrets';

export type Classification = 'read' | 'write' | 'ddl' | 'transaction' | 'other';

/** A literal in a statement's text whose value lands in a secret-named column or option. */
export interface SecretLiteral {
  /** UTF-16 offsets of the whole literal token (quotes included) in `text` */
  start: number;
  end: number;
  /** the column or option name it belongs to: the key hint for structural masking */
  column: string;
  /** the literal's value as the server reads it */
  value: string;
}

/**
 * COPY … FROM STDIN / TO STDOUT with a column list that names a secret column, or with no column
 * list (`columns` empty: the relay fills in the table's columns if it learned them).
 */
export interface SecretCopy {
  columns: string[];
  table?: string;
  csv: boolean;
  /** binary COPY: fields cannot be picked out of a head cut anywhere, so none of it is kept */
  binary: boolean;
  delimiter: string;
  header: boolean;
}

export interface StatementInfo {
  text: string;
  classification: Classification;
  targets: string[];
  /** literals of `text` that hold a secret by where they go (INSERT/UPDATE columns, WHERE, PASSWORD '…') */
  secretLiterals?: SecretLiteral[];
  /** bind parameters ($n, 1-based) that land in a secret-named column */
  secretParams?: Array<{ index: number; column: string }>;
  secretCopy?: SecretCopy;
  /**
   * Result columns computed from a secret column (`password`, `password AS p`, `upper(token)`),
   * by position in the result: the alias hides nothing, and it holds when no RowDescription
   * came (an Execute without Describe).
   */
  secretResults?: Array<{ index: number; column: string }>;
  /** PREPARE name AS …: the SQL-level prepared statement and its secret parameters */
  prepare?: { name: string; secretParams: Array<{ index: number; column: string }> };
  /**
   * INSERT without a column list: the literals and parameters at each VALUES position, for the
   * relay to match against the table's columns where it has learned them.
   */
  insertPositional?: { table: string; positions: Array<{ literals: Array<Omit<SecretLiteral, 'column'>>; params: number[] }> };
  /** what a statement tells of a table's columns: CREATE TABLE lists them, SELECT * FROM one table returns them */
  tableColumns?: { table: string; columns: string[] };
  selectStarFrom?: string;
  /** ALTER/DROP TABLE: what was learned of its columns no longer holds */
  alteredTable?: string;
  /** EXECUTE name(…): its argument literals, by parameter number */
  execute?: { name: string; args: Array<{ index: number; start: number; end: number; value: string }> };
}

let loaded: Promise<void> | null = null;

/** Loads the parser's WebAssembly module once; call before classify(). */
export function loadSqlParser(): Promise<void> {
  if (!loaded) loaded = pgQuery.loadModule();
  return loaded;
}


const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'TruncateStmt']);
const DDL_NODES = new Set([
  'RenameStmt', 'GrantStmt', 'GrantRoleStmt', 'CommentStmt', 'IndexStmt', 'ViewStmt', 'RuleStmt', 'DefineStmt',
  'CompositeTypeStmt', 'ClusterStmt', 'ReindexStmt', 'SecLabelStmt', 'AlterDefaultPrivilegesStmt', 'DropOwnedStmt',
  'ReassignOwnedStmt', 'RefreshMatViewStmt', 'ImportForeignSchemaStmt',
]);

function isDdl(name: string): boolean {
  return DDL_NODES.has(name) || /^(Create|Alter|Drop)/.test(name);
}


function classifyNode(name: string, node: Node): Classification {
  if (name === 'TransactionStmt') return 'transaction';
  if (name === 'ExplainStmt' || name === 'PrepareStmt') {
    const inner = (node.query ?? {}) as Node;
    const innerName = Object.keys(inner)[0];
    if (!innerName) return 'other';
    const c = classifyNode(innerName, inner[innerName] as Node);
    // EXPLAIN without ANALYZE does not run the statement
    if (name === 'ExplainStmt' && c === 'write') {
      const analyze = JSON.stringify(node.options ?? []).includes('"defname":"analyze"');
      return analyze ? 'write' : 'read';
    }
    return c;
  }
  if (name === 'CopyStmt') return node.is_from ? 'write' : 'read';
  if (WRITE_NODES.has(name)) return 'write';
  if (isDdl(name)) return 'ddl';
  if (name === 'SelectStmt') {
    let writes = Boolean(node.intoClause);
    walk(node, (n) => { if (WRITE_NODES.has(n)) writes = true; });
    return writes ? 'write' : 'read';
  }
  return 'other';
}

function targetsOf(stmt: Node): string[] {
  const ctes = new Set<string>();
  const found = new Set<string>();
  // RangeVars appear both wrapped ({RangeVar: …}) and bare (InsertStmt.relation): match by shape
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const node = value as Node;
    if (typeof node.ctename === 'string') ctes.add(node.ctename);
    if (typeof node.relname === 'string') {
      found.add(typeof node.schemaname === 'string' ? `${node.schemaname}.${node.relname}` : node.relname);
    }
    for (const v of Object.values(node)) if (v !== null && typeof v === 'object') visit(v);
  };
  visit(stmt);
  // DROP TABLE lists names as plain string lists
  const drop = stmt.DropStmt as Node | undefined;
  if (drop && (drop.removeType === 'OBJECT_TABLE' || drop.removeType === 'OBJECT_VIEW') && Array.isArray(drop.objects)) {
    for (const o of drop.objects as Node[]) {
      const items = ((o.List as Node | undefined)?.items ?? []) as Node[];
      const names = items.map((i) => (i.String as Node | undefined)?.sval).filter((s): s is string => typeof s === 'string');
      if (names.length) found.add(names.join('.'));
    }
  }
  return [...found].filter((t) => !ctes.has(t));
}

const MAX_CACHE = 5000;
const byText = new Map<string, StatementInfo[]>();
const byShape = new Map<string, StatementInfo>();

/** Literal-free form of a text, or null when the text has quoting a regex cannot read safely. */
export function shapeOf(sql: string): string | null {
  if (/[\\$"]|--|\/\*/.test(sql)) return null;
  return sql.replace(/'[^']*'/g, '?').replace(/\b\d+(?:\.\d+)?\b/g, '?');
}

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= MAX_CACHE) map.clear();
  map.set(key, value);
}

/**
 * Splits a query string into statements and classifies each. A text the parser rejects is one
 * statement classified 'other' (the server will answer it with the real syntax error).
 */
export function analyzeSql(sql: string): StatementInfo[] {
  const hit = byText.get(sql);
  if (hit) return hit;
  const shape = shapeOf(sql);
  if (shape !== null) {
    // a shape is only kept when no literal of it is a secret: the literals differ, the rest holds
    const s = byShape.get(shape);
    if (s) return [{ ...s, text: sql.trim() }];
  }
  let out: StatementInfo[];
  try {
    const tree = pgQuery.parseSync(sql) as unknown as { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
    const stmts = tree.stmts ?? [];
    const bytes = Buffer.from(sql, 'utf8');
    const ascii = bytes.length === sql.length;
    out = stmts.map((s) => {
      const name = Object.keys(s.stmt)[0];
      const loc = stmts.length === 1 ? 0 : s.stmt_location ?? 0;
      const len = stmts.length === 1 ? bytes.length : s.stmt_len ?? bytes.length - loc;
      const slice = bytes.toString('utf8', loc, loc + len);
      const text = slice.trim();
      const base = loc + Buffer.byteLength(slice.slice(0, slice.length - slice.trimStart().length));
      return {
        text,
        classification: classifyNode(name, s.stmt[name] as Node),
        targets: targetsOf(s.stmt),
        ...secretsOf(s.stmt, bytes, ascii, base, text),
      };
    });
    if (out.length === 0) out = [{ text: sql.trim(), classification: 'other', targets: [] }];
  } catch {
    out = [{ text: sql.trim(), classification: 'other', targets: [] }];
  }
  remember(byText, sql, out);
  if (shape !== null && out.length === 1 && !out[0].secretLiterals && !out[0].execute && !out[0].insertPositional && !out[0].secretCopy) remember(byShape, shape, out[0]);
  return out;
}
