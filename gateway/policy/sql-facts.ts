/**
 * What guardrails see of an SQL text: every statement the server would run, from the real
 * PostgreSQL parser (libpg-query), including statements nested in CTEs, EXPLAIN ANALYZE,
 * PREPARE, CREATE RULE actions and CREATE TABLE AS. Case, comments, whitespace and quoting are
 * gone by construction: rules match the parse tree, never the text.
 */
import * as pgQuery from 'libpg-query';
import { shapeOf } from '../postgres/sql-info';

export interface SqlStatementFacts {
  /** lower-case statement kind: select, insert, update, delete, drop, truncate, alter, create, grant, revoke, copy, do, call, … */
  statement: string;
  /** for update/delete: whether a WHERE clause limits it (null for other kinds) */
  hasWhere: boolean | null;
  /** tables the statement names (relname and schema.relname) */
  tables: string[];
}

export interface SqlFacts {
  /** every statement, nested ones included */
  statements: SqlStatementFacts[];
  /** the text did not parse: rules on SQL structure cannot vouch for it */
  unparsed: boolean;
}

type Node = { [key: string]: unknown };

/** Node names whose kind is not the first word of the name. */
const KIND_BY_NODE: Record<string, string> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  DropStmt: 'drop',
  DropdbStmt: 'drop',
  DropRoleStmt: 'drop',
  DropOwnedStmt: 'drop',
  DropTableSpaceStmt: 'drop',
  DropSubscriptionStmt: 'drop',
  DropUserMappingStmt: 'drop',
  RemoveFuncStmt: 'drop',
  RenameStmt: 'alter',
  CopyStmt: 'copy',
  DoStmt: 'do',
  CallStmt: 'call',
  ExplainStmt: 'explain',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  TransactionStmt: 'transaction',
  VariableSetStmt: 'set',
  VariableShowStmt: 'show',
  VacuumStmt: 'vacuum',
  ClusterStmt: 'cluster',
  ReindexStmt: 'reindex',
  IndexStmt: 'create',
  ViewStmt: 'create',
  RuleStmt: 'create',
  DefineStmt: 'create',
  CompositeTypeStmt: 'create',
  CreateTableAsStmt: 'create',
  RefreshMatViewStmt: 'refresh',
  LockStmt: 'lock',
  CommentStmt: 'comment',
  SecLabelStmt: 'security-label',
  ListenStmt: 'listen',
  NotifyStmt: 'notify',
  UnlistenStmt: 'unlisten',
  LoadStmt: 'load',
  CheckPointStmt: 'checkpoint',
  DiscardStmt: 'discard',
  ReassignOwnedStmt: 'reassign',
  ImportForeignSchemaStmt: 'import',
  AlterDefaultPrivilegesStmt: 'alter',
  GrantRoleStmt: 'grant',
  ConstraintsSetStmt: 'set',
  FetchStmt: 'fetch',
  DeclareCursorStmt: 'declare',
  ClosePortalStmt: 'close',
};

/** Statement kinds a rule may name (`sql.statement`). */
export const STATEMENT_KINDS: readonly string[] = [...new Set([...Object.values(KIND_BY_NODE), 'create', 'alter', 'drop', 'grant', 'revoke'])].sort();

function kindOf(name: string, node: Node): string {
  if (name === 'GrantStmt' || name === 'GrantRoleStmt') return node.is_grant ? 'grant' : 'revoke';
  const known = KIND_BY_NODE[name];
  if (known) return known;
  const m = /^(Create|Alter|Drop)/.exec(name);
  if (m) return m[1].toLowerCase();
  return name.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
}

function relationName(v: unknown): string[] {
  if (v === null || typeof v !== 'object') return [];
  const n = v as Node;
  if (typeof n.relname !== 'string') return [];
  const rel = n.relname.toLowerCase();
  return typeof n.schemaname === 'string' ? [rel, `${n.schemaname.toLowerCase()}.${rel}`] : [rel];
}

/** Tables named anywhere under a node: RangeVars, and the name lists of DROP/TRUNCATE. */
function tablesUnder(node: unknown, out: Set<string>, ctes: Set<string>): void {
  if (Array.isArray(node)) {
    for (const v of node) tablesUnder(v, out, ctes);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const n = node as Node;
  if (typeof n.ctename === 'string') ctes.add(n.ctename.toLowerCase());
  for (const t of relationName(n)) out.add(t);
  for (const v of Object.values(n)) if (v !== null && typeof v === 'object') tablesUnder(v, out, ctes);
}

function dropNames(drop: Node): string[] {
  if (!Array.isArray(drop.objects)) return [];
  const names: string[] = [];
  for (const o of drop.objects as Node[]) {
    const items = ((o.List as Node | undefined)?.items ?? []) as Node[];
    const parts = items.map((i) => (i.String as Node | undefined)?.sval).filter((s): s is string => typeof s === 'string').map((s) => s.toLowerCase());
    if (parts.length) {
      names.push(parts[parts.length - 1]);
      if (parts.length > 1) names.push(parts.join('.'));
    }
  }
  return names;
}

/** Collects every statement node (a key ending in Stmt holding an object) under a tree, outermost first. */
function collect(value: unknown, out: SqlStatementFacts[]): void {
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Node)) {
    if (v === null || typeof v !== 'object') continue;
    if (!Array.isArray(v) && /^[A-Z][A-Za-z]*Stmt$/.test(k)) {
      const node = v as Node;
      const statement = kindOf(k, node);
      const tables = new Set<string>();
      const ctes = new Set<string>();
      // a statement's own tables, not those of statements nested in it (they are their own entries)
      tablesUnder(node.relation ?? null, tables, ctes);
      tablesUnder(node.relations ?? null, tables, ctes);
      tablesUnder(node.fromClause ?? null, tables, ctes);
      tablesUnder(node.usingClause ?? null, tables, ctes);
      if (k === 'DropStmt') for (const t of dropNames(node)) tables.add(t);
      if (k === 'CreateTableAsStmt') tablesUnder(((node.into ?? {}) as Node).rel ?? null, tables, ctes);
      if (k === 'GrantStmt') tablesUnder(node.objects ?? null, tables, ctes);
      const hasWhere = statement === 'update' || statement === 'delete' ? node.whereClause !== undefined && node.whereClause !== null : null;
      out.push({ statement, hasWhere, tables: [...tables].filter((t) => !ctes.has(t)) });
    }
    collect(v, out);
  }
}

const MAX_CACHE = 5000;
const cache = new Map<string, SqlFacts>();

/** The parser must be loaded first (loadSqlParser in gateway/postgres/sql-info.ts). */
export function sqlFacts(sql: string): SqlFacts {
  // facts do not depend on literals: pgbench-style traffic hits the cache by shape
  const key = shapeOf(sql) ?? sql;
  const hit = cache.get(key);
  if (hit) return hit;
  let facts: SqlFacts;
  try {
    const tree = pgQuery.parseSync(sql) as unknown as { stmts?: { stmt: Node }[] };
    const statements: SqlStatementFacts[] = [];
    for (const s of tree.stmts ?? []) collect({ root: s.stmt }, statements);
    facts = { statements, unparsed: false };
  } catch {
    facts = { statements: [], unparsed: true };
  }
  if (cache.size >= MAX_CACHE) cache.clear();
  cache.set(key, facts);
  return facts;
}
