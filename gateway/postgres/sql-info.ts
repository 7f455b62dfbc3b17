/**
 * Statement classification and touched tables, from libpg-query (the real PostgreSQL parser).
 * Parsing costs ~40 µs, so results are cached per text and, for simple texts, per "shape"
 * (literals replaced), which is what lets pgbench-style traffic with varying literals stay cheap.
 */
import * as pgQuery from 'libpg-query';

export type Classification = 'read' | 'write' | 'ddl' | 'transaction' | 'other';

export interface StatementInfo {
  text: string;
  classification: Classification;
  targets: string[];
}

let loaded: Promise<void> | null = null;

/** Loads the parser's WebAssembly module once; call before classify(). */
export function loadSqlParser(): Promise<void> {
  if (!loaded) loaded = pgQuery.loadModule();
  return loaded;
}

type Node = { [key: string]: unknown };

const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'TruncateStmt']);
const DDL_NODES = new Set([
  'RenameStmt', 'GrantStmt', 'GrantRoleStmt', 'CommentStmt', 'IndexStmt', 'ViewStmt', 'RuleStmt', 'DefineStmt',
  'CompositeTypeStmt', 'ClusterStmt', 'ReindexStmt', 'SecLabelStmt', 'AlterDefaultPrivilegesStmt', 'DropOwnedStmt',
  'ReassignOwnedStmt', 'RefreshMatViewStmt', 'ImportForeignSchemaStmt',
]);

function isDdl(name: string): boolean {
  return DDL_NODES.has(name) || /^(Create|Alter|Drop)/.test(name);
}

/** Walks any parse-tree value, calling visit(nodeName, node) for each named node. */
function walk(value: unknown, visit: (name: string, node: Node) => void): void {
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
    const s = byShape.get(shape);
    if (s) return [{ text: sql.trim(), classification: s.classification, targets: s.targets }];
  }
  let out: StatementInfo[];
  try {
    const tree = pgQuery.parseSync(sql) as unknown as { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
    const stmts = tree.stmts ?? [];
    const bytes = Buffer.from(sql, 'utf8');
    out = stmts.map((s) => {
      const name = Object.keys(s.stmt)[0];
      const loc = s.stmt_location ?? 0;
      const len = s.stmt_len ?? bytes.length - loc;
      return {
        text: stmts.length === 1 ? sql.trim() : bytes.toString('utf8', loc, loc + len).trim(),
        classification: classifyNode(name, s.stmt[name] as Node),
        targets: targetsOf(s.stmt),
      };
    });
    if (out.length === 0) out = [{ text: sql.trim(), classification: 'other', targets: [] }];
  } catch {
    out = [{ text: sql.trim(), classification: 'other', targets: [] }];
  }
  remember(byText, sql, out);
  if (shape !== null && out.length === 1) remember(byShape, shape, out[0]);
  return out;
}
