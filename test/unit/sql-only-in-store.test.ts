/**
 * The read seam: every SQLite statement lives behind gateway/store/, so a schema change is one
 * folder's business and the rest of the gateway asks the store for typed results. This scans the
 * gateway's TypeScript outside store/ with the compiler's parser (so comments and regular
 * expressions do not count) and names file:line of any statement it finds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const GATEWAY = path.join(ROOT, 'gateway');
const STORE = path.join(GATEWAY, 'store');

/** A string that reads as a SQL statement (upper-case keywords, as every statement here is written). */
const SQL_STATEMENT = /\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bCREATE\s+(?:TABLE|INDEX|VIRTUAL\s+TABLE|TRIGGER|VIEW)\b|\bPRAGMA\b/;
/** A receiver that is a database handle: `db`, `this.db`, `store.db`, `database`, `sqlite`. */
const DB_RECEIVER = /(?:^|\.)(?:db|database|sqlite)$/i;

/**
 * SQL that is not the store's: statements a listener or check sends to an upstream PostgreSQL
 * server, or parses from the agent's traffic. Each entry names a file and why; keep it short.
 */
const NOT_STORE_SQL: ReadonlyArray<{ file: string; why: string }> = [];

interface Hit {
  file: string;
  line: number;
  what: string;
}

function literalText(node: ts.Node): string | null {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) return node.head.text + node.templateSpans.map((s) => ' ? ' + s.literal.text).join('');
  return null;
}

/** Every SQL statement in one source text: db calls and statement-like string literals. */
function sqlIn(file: string, source: string): Hit[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const hits: Hit[] = [];
  const add = (node: ts.Node, what: string): void => {
    hits.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, what });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const name = node.expression.name.text;
      const receiver = node.expression.expression.getText(sf).replace(/\s+/g, '');
      const arg = node.arguments[0] ? literalText(node.arguments[0]) : null;
      if (name === 'prepare' || name === 'pragma') add(node, `.${name}(`);
      else if ((name === 'exec' || name === 'transaction') && (DB_RECEIVER.test(receiver) || (arg !== null && SQL_STATEMENT.test(arg)))) add(node, `${receiver}.${name}(`);
    }
    const text = literalText(node);
    if (text !== null && SQL_STATEMENT.test(text)) {
      add(node, `SQL in a string: ${text.replace(/\s+/g, ' ').slice(0, 60)}`);
      return; // a template's spans are inside it: one hit per literal
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return hits;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== STORE) out.push(...sourceFiles(p));
    } else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('no SQL outside gateway/store/', () => {
  it('finds no SQLite statement in the gateway outside store/', () => {
    const allowed = new Set(NOT_STORE_SQL.map((a) => a.file));
    const hits = sourceFiles(GATEWAY)
      .map((f) => path.relative(ROOT, f).split(path.sep).join('/'))
      .filter((f) => !allowed.has(f))
      .flatMap((f) => sqlIn(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));
    assert.deepEqual(
      hits.map((h) => `${h.file}:${h.line}: ${h.what}`),
      [],
      'move these statements into a function in gateway/store/ and call it from here',
    );
  });

  it('catches the shapes SQL took before the seam, and not regular expressions or comments', () => {
    const old = [
      "const n = db.prepare('SELECT id FROM runs WHERE id = ?').get(id);",
      '  db.pragma(\'query_only = ON\');',
      "    db.exec('BEGIN');",
      "this.db.exec('SAVEPOINT session');",
      'const any = q(`SELECT COUNT(*) AS n FROM ${table} WHERE id BETWEEN ? AND ?`);',
      "const sql = 'INSERT OR IGNORE INTO identities (name) VALUES (?)';",
      "const s = 'DELETE FROM tokens WHERE id = ?';",
      'const u = `UPDATE sessions SET status = ?`;',
      'db.transaction(() => undefined).immediate();',
    ].join('\n');
    assert.deepEqual(
      sqlIn('old.ts', old).map((h) => h.line),
      [1, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const fine = [
      '// SELECT * FROM this table: learned once it succeeds; CREATE TABLE lists columns',
      'const m = /^(\\d+)x(\\d+)$/.exec(data);',
      'client.exec(what.command, { env }, cb);',
      "const msg = 'select a session from the list';",
    ].join('\n');
    assert.deepEqual(sqlIn('fine.ts', fine), []);
  });
});
