/**
 * Where a Postgres statement puts a secret: literals and bind parameters bound for secret-named
 * columns, role passwords, COPY column lists, found from the real parser's tree; and how the
 * recording path masks them in place.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { analyzeSql, loadSqlParser, type StatementInfo } from '../../gateway/postgres/sql-info';
import { literalEnd } from '../../gateway/postgres/sql-secrets';
import { maskCopyText, maskParams, maskStatementText, scrubMessage, type Sighting } from '../../gateway/postgres/secret-columns';
import { createMasker } from '../../gateway/masking';
import { scramMockCandidates, scramMockSalt } from '../../gateway/core/scram';

before(() => loadSqlParser());

const masker = createMasker({ fingerprintKey: randomBytes(32) });

function one(sql: string): StatementInfo {
  const infos = analyzeSql(sql);
  assert.equal(infos.length, 1);
  return infos[0];
}

/** The secret literals as they read in the text, with their column. */
function lits(info: StatementInfo): Array<[string, string, string]> {
  return (info.secretLiterals ?? []).map((l) => [info.text.slice(l.start, l.end), l.column, l.value]);
}

test('INSERT: literals and parameters in secret columns, through casts, functions, several rows and ON CONFLICT', () => {
  const i = one(
    "INSERT INTO users (name, password, api_key) VALUES ('a', E'p\\'w1'::text, crypt($1, gen_salt('bf'))), ($2, 'pw2', $3) " +
      "ON CONFLICT (name) DO UPDATE SET password = 'pw3'",
  );
  assert.deepEqual(lits(i), [
    ["E'p\\'w1'", 'password', "p'w1"],
    ["'bf'", 'api_key', 'bf'],
    ["'pw2'", 'password', 'pw2'],
    ["'pw3'", 'password', 'pw3'],
  ]);
  assert.deepEqual(i.secretParams, [{ index: 1, column: 'api_key' }, { index: 3, column: 'api_key' }]);
  assert.deepEqual(lits(one("INSERT INTO users (name, password) SELECT 'a', $$dollar'pw$$")), [['$$dollar\'pw$$', 'password', "dollar'pw"]]);
  assert.equal(one("INSERT INTO users (name, note) VALUES ('a', 'b')").secretLiterals, undefined);
});

test('UPDATE SET and WHERE comparisons on secret columns; numbers too', () => {
  const u = one("UPDATE users SET password = $1, api_key = 'k-1' WHERE u.password = 'old' OR 'x2' = token OR secret IN ('s1', 's2') OR pin = 1234");
  assert.deepEqual(lits(u).map((l) => l[0]), ["'k-1'", "'old'", "'x2'", "'s1'", "'s2'"]);
  assert.deepEqual(u.secretParams, [{ index: 1, column: 'password' }]);
  assert.deepEqual(lits(one('UPDATE accounts SET db_password = 424242')), [['424242', 'db_password', '424242']]);
});

test('role passwords and user-mapping options, with any quoting', () => {
  assert.deepEqual(lits(one("ALTER ROLE r1 WITH ENCRYPTED PASSWORD 'pw7' VALID UNTIL 'infinity'")), [["'pw7'", 'password', 'pw7']]);
  assert.deepEqual(lits(one("CREATE USER u2 PASSWORD E'a\\\\b''c'")), [["E'a\\\\b''c'", 'password', "a\\b'c"]]);
  assert.deepEqual(lits(one('alter user "Bob" password $tag$x$y$tag$')), [['$tag$x$y$tag$', 'password', 'x$y']]);
  assert.deepEqual(lits(one("CREATE USER MAPPING FOR bob SERVER foo OPTIONS (user 'bob', password 'secret9')")), [["'secret9'", 'password', 'secret9']]);
  assert.equal(one('ALTER ROLE r1 PASSWORD NULL').secretLiterals, undefined);
  assert.deepEqual(lits(one("SET app.api_key = 'k-set-1'")), [["'k-set-1'", 'app.api_key', 'k-set-1']]);
  assert.equal(one("SET search_path = 'public'").secretLiterals, undefined);
});

test('offsets hold in multi-statement texts with non-ASCII characters before the literal', () => {
  const infos = analyzeSql("SELECT 'héllo ✓';\n  UPDATE t SET note = 'ünï', password = 'pw-ß' WHERE id = 1");
  assert.equal(infos.length, 2);
  assert.deepEqual(lits(infos[1]), [["'pw-ß'", 'password', 'pw-ß']]);
});

test('texts of the same shape keep their own literal positions (the shape cache never serves a secret literal)', () => {
  const a = one("INSERT INTO users (name, password) VALUES ('a', 'first-pw')");
  const b = one("INSERT INTO users (name, password) VALUES ('bb', 'second-pw')");
  assert.deepEqual(lits(a), [["'first-pw'", 'password', 'first-pw']]);
  assert.deepEqual(lits(b), [["'second-pw'", 'password', 'second-pw']]);
  // statements without secrets still share one parse per shape
  assert.equal(one("SELECT name FROM users WHERE id = 'x'").classification, 'read');
  assert.equal(one("SELECT name FROM users WHERE id = 'y'").secretLiterals, undefined);
});

test('PREPARE names its secret parameters; EXECUTE lists its argument literals; COPY column lists', () => {
  assert.deepEqual(one('PREPARE ins(text, text) AS INSERT INTO users(name, password) VALUES ($1, $2)').prepare, {
    name: 'ins', secretParams: [{ index: 2, column: 'password' }],
  });
  const e = one("EXECUTE ins('dave', 'pw-e')");
  assert.deepEqual(e.execute?.args.map((a) => [e.text.slice(a.start, a.end), a.index]), [["'dave'", 1], ["'pw-e'", 2]]);
  assert.deepEqual(one("COPY users (name, password) FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER)").secretCopy, {
    columns: ['name', 'password'], csv: true, binary: false, delimiter: ';', header: true,
  });
  assert.deepEqual(one('COPY users (name, password) TO STDOUT').secretCopy, { columns: ['name', 'password'], csv: false, binary: false, delimiter: '\t', header: false });
  assert.equal(one('COPY users (name, note) FROM STDIN').secretCopy, undefined);
  assert.deepEqual(one('COPY public.users FROM STDIN').secretCopy, { columns: [], table: 'users', csv: false, binary: false, delimiter: '\t', header: false });
  assert.equal(one('COPY users (name, password) TO STDOUT (FORMAT binary)').secretCopy?.binary, true);
});

test('result columns that compute a secret column, under any name, up to the first *', () => {
  assert.deepEqual(one('SELECT name, password AS p, upper(api_key), id, token FROM users').secretResults, [
    { index: 1, column: 'password' }, { index: 2, column: 'api_key' }, { index: 4, column: 'token' },
  ]);
  assert.deepEqual(one('SELECT password AS x, *, secret AS y FROM users').secretResults, [{ index: 0, column: 'password' }]);
  assert.equal(one('SELECT *, password AS p FROM users').secretResults, undefined);
  assert.deepEqual(one("UPDATE users SET name = 'n' RETURNING id, api_key || '' AS k").secretResults, [{ index: 1, column: 'api_key' }]);
  assert.equal(one('SELECT id FROM users WHERE password IS NULL').secretResults, undefined);
});

test('table facts: CREATE TABLE columns, SELECT * FROM one table, ALTER forgets, INSERT positions without a column list', () => {
  assert.deepEqual(one('CREATE TABLE public.vault (id int, secret text, PRIMARY KEY (id))').tableColumns, { table: 'vault', columns: ['id', 'secret'] });
  assert.equal(one('SELECT * FROM app.vault').selectStarFrom, 'app.vault');
  assert.equal(one('SELECT *, 1 FROM vault').selectStarFrom, undefined);
  assert.equal(one('SELECT * FROM vault a JOIN other b ON true').selectStarFrom, undefined);
  assert.equal(one('ALTER TABLE vault ADD COLUMN token text').alteredTable, 'vault');
  const i = one("INSERT INTO vault VALUES (1, 'pw-a'), ($1, upper($2))");
  assert.deepEqual(i.insertPositional?.table, 'vault');
  assert.deepEqual(i.insertPositional?.positions.map((p) => [p.literals.map((l) => i.text.slice(l.start, l.end)), p.params]), [[['1'], [1]], [["'pw-a'"], [2]]]);
});

test('literalEnd reads every literal form and refuses what is not one', () => {
  assert.equal(literalEnd("x = 'a''b' y", 4), 10);
  assert.equal(literalEnd("E'a\\'b'", 0), 7);
  assert.equal(literalEnd("U&'d\\0061'", 0), 10);
  assert.equal(literalEnd('$q$ a $ b $q$;', 0), 13);
  assert.equal(literalEnd('-12.5e3,', 0), 7);
  assert.equal(literalEnd('abc', 0), -1);
  assert.equal(literalEnd("'unterminated", 0), -1);
});

test('masking in place: the text keeps its shape, parameters and COPY fields are masked whole, errors are scrubbed', () => {
  const found: Sighting[] = [];
  const text = maskStatementText(masker, one("INSERT INTO users (name, password) VALUES ('alice', 'Xq7-plain-pw-91')"), found);
  assert.match(text, /^INSERT INTO users \(name, password\) VALUES \('alice', '\[MASKED:password:[0-9a-f]{10}\]'\)$/);
  assert.deepEqual(found.map((f) => [f.kind, f.column, f.raw]), [['password', 'password', 'Xq7-plain-pw-91']]);
  assert.equal(scrubMessage('bad value "Xq7-plain-pw-91"', found), `bad value "[MASKED:password:${found[0].fp}]"`);

  const p: Sighting[] = [];
  const params = maskParams(masker, ['bob', 'Lm4-plain-key-27', null], [{ index: 2, column: 'api_key' }, { index: 3, column: 'password' }], p);
  assert.equal(params[0], 'bob');
  assert.match(String(params[1]), /^\[MASKED:secret-field:[0-9a-f]{10}\]$/);
  assert.equal(params[2], null);
  assert.equal(p.length, 1);

  const c: Sighting[] = [];
  const spec = { columns: ['name', 'password'], csv: false, binary: false, delimiter: '\t', header: false };
  const copied = maskCopyText(masker, 'carol\tBs1-copy-pw-86\ndan\t\\N\n\\.\n', spec, c, true);
  assert.match(copied, /^carol\t\[MASKED:password:[0-9a-f]{10}\]\ndan\t\\N\n\\\.\n$/);
  const csv = maskCopyText(masker, 'name;password\n"a;b";"x""y-pw"\n', { ...spec, csv: true, delimiter: ';', header: true }, c, true);
  assert.match(csv, /^name;password\n"a;b";\[MASKED:password:[0-9a-f]{10}\]\n$/);
  assert.equal(c.length, 2);
});

test('mock SCRAM salts: 16 bytes like real ones, stable per name and key, unrelated across names and keys', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  assert.equal(scramMockSalt(k1, 'ghost').length, 16);
  assert.deepEqual(scramMockSalt(k1, 'ghost'), scramMockSalt(k1, 'ghost'));
  assert.notDeepEqual(scramMockSalt(k1, 'ghost'), scramMockSalt(k1, 'ghost2'));
  assert.notDeepEqual(scramMockSalt(k1, 'ghost'), scramMockSalt(k2, 'ghost'));
  const m = scramMockCandidates(k1, 'ghost');
  assert.equal(m.iterations, 4096);
  assert.equal(m.verifiers.length, 1);
  assert.equal(m.verifiers[0].storedKey.length, 32);
});
