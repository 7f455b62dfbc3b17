import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFrameHeader, parseClientMessage, parseStartupPacket, ProtocolError } from '../../gateway/postgres/client-messages';
import { ScramClient } from '../../gateway/core/scram';
import { analyzeSql, loadSqlParser } from '../../gateway/postgres/sql-info';
import { decodeDataRow, encodeDataRow, renderValue } from '../../gateway/postgres/server-messages';
import * as wire from '../../gateway/postgres/wire';

function frame(type: string, ...parts: Buffer[]): Buffer {
  return wire.message(type, Buffer.concat(parts));
}
const i16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

function parse(buf: Buffer) {
  const total = checkFrameHeader(buf[0], buf.readInt32BE(1));
  assert.equal(total, buf.length);
  return parseClientMessage(buf, 0, total);
}

test('parses the frontend messages of the simple and extended protocols', () => {
  assert.deepEqual(parse(frame('Q', wire.cstr('select 1'))), { type: 'Query', sql: 'select 1' });
  assert.deepEqual(parse(frame('P', wire.cstr('s1'), wire.cstr('select $1'), i16(1), i32(23))), { type: 'Parse', name: 's1', sql: 'select $1', paramTypes: [23] });
  const bind = parse(frame('B', wire.cstr(''), wire.cstr('s1'), i16(2), i16(0), i16(1), i16(2), i32(2), Buffer.from('42'), i32(-1), i16(1), i16(1)));
  assert.equal(bind.type, 'Bind');
  if (bind.type === 'Bind') {
    assert.equal(bind.params[0].format, 0);
    assert.equal(bind.params[0].value?.toString(), '42');
    assert.equal(bind.params[1].format, 1);
    assert.equal(bind.params[1].value, null);
    assert.deepEqual(bind.resultFormats, [1]);
  }
  assert.deepEqual(parse(frame('D', Buffer.from('P'), wire.cstr(''))), { type: 'Describe', target: 'P', name: '' });
  assert.deepEqual(parse(frame('E', wire.cstr('p'), i32(10))), { type: 'Execute', portal: 'p', maxRows: 10 });
  assert.deepEqual(parse(frame('C', Buffer.from('S'), wire.cstr('s1'))), { type: 'Close', target: 'S', name: 's1' });
  assert.deepEqual(parse(frame('S')), { type: 'Sync' });
  assert.deepEqual(parse(frame('H')), { type: 'Flush' });
  assert.deepEqual(parse(frame('X')), { type: 'Terminate' });
  assert.deepEqual(parse(frame('d', Buffer.from('1\t2\n'))), { type: 'CopyData', length: 4 });
  assert.deepEqual(parse(frame('c')), { type: 'CopyDone' });
  assert.deepEqual(parse(frame('f', wire.cstr('nope'))), { type: 'CopyFail', message: 'nope' });
  const fc = parse(frame('F', i32(1598), i16(0), i16(1), i32(1), Buffer.from('7'), i16(0)));
  assert.equal(fc.type, 'FunctionCall');
});

test('rejects malformed frontend messages with a ProtocolError', () => {
  assert.throws(() => checkFrameHeader('Z'.charCodeAt(0), 4), ProtocolError);
  assert.throws(() => checkFrameHeader('Q'.charCodeAt(0), 3), ProtocolError);
  assert.throws(() => checkFrameHeader('S'.charCodeAt(0), 1 << 20), ProtocolError);
  assert.throws(() => parse(frame('Q', Buffer.from('no terminator'))), ProtocolError);
  assert.throws(() => parse(frame('E', wire.cstr('p'))), ProtocolError);
  assert.throws(() => parse(frame('B', wire.cstr(''), wire.cstr(''), i16(0), i16(1), i32(50), Buffer.from('short'))), ProtocolError);
  assert.throws(() => parse(frame('D', Buffer.from('Z'), wire.cstr(''))), ProtocolError);
  assert.throws(() => parse(frame('S', Buffer.from('x'))), ProtocolError);
});

test('parses startup packets', () => {
  assert.deepEqual(parseStartupPacket(wire.sslRequest()), { kind: 'ssl' });
  assert.deepEqual(parseStartupPacket(wire.cancelRequest(7, -9)), { kind: 'cancel', pid: 7, secret: -9 });
  const s = parseStartupPacket(wire.startupMessage({ user: 'claude', database: 'app' }));
  assert.equal(s.kind, 'startup');
  if (s.kind === 'startup') assert.deepEqual({ ...s.params }, { user: 'claude', database: 'app' });
  assert.throws(() => parseStartupPacket(Buffer.from([0, 0, 0, 8, 0, 2, 0, 0])), ProtocolError);
});

test('SCRAM-SHA-256 client matches the RFC 7677 example', () => {
  const c = new ScramClient('pencil', 'rOprNGfwEbeRWgbNEkqO', 'user');
  assert.equal(c.first().toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const final = c.final('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  assert.equal(final.toString(), 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  c.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  assert.throws(() => c.verify('v=AAAArriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='));
  assert.throws(() => new ScramClient('x', 'abc').final('r=zzz,s=AAAA,i=4096'));
});

test('classifies statements and finds the tables they touch', async () => {
  await loadSqlParser();
  const [sel] = analyzeSql('SELECT * FROM users u JOIN public.orders o ON o.uid = u.id');
  assert.equal(sel.classification, 'read');
  assert.deepEqual(sel.targets.sort(), ['public.orders', 'users']);
  const multi = analyzeSql('begin; insert into t values (1); update u set x = 1; create table z (a int); commit; with a as (delete from d returning *) select * from a; copy t to stdout; explain select 1; set work_mem = 1');
  assert.deepEqual(multi.map((s) => s.classification), ['transaction', 'write', 'write', 'ddl', 'transaction', 'write', 'read', 'read', 'other']);
  assert.deepEqual(multi[1].targets, ['t']);
  assert.deepEqual(multi[5].targets, ['d']);
  assert.equal(multi[1].text, 'insert into t values (1)');
  assert.equal(analyzeSql('drop table users')[0].classification, 'ddl');
  assert.deepEqual(analyzeSql('drop table users')[0].targets, ['users']);
  assert.equal(analyzeSql('selec 1')[0].classification, 'other');
  // the shape cache must not let a differently quoted text borrow a classification
  assert.equal(analyzeSql("SELECT 'a' FROM t WHERE id = 1")[0].classification, 'read');
  assert.equal(analyzeSql("SELECT E'\\'', 1; DROP TABLE x; --'")[1]?.classification, 'ddl');
  assert.equal(analyzeSql("SELECT 'b' FROM t WHERE id = 2")[0].classification, 'read');
});

test('renders values and re-encodes data rows', () => {
  const int = Buffer.alloc(4); int.writeInt32BE(-5);
  assert.equal(renderValue(int, 1, 23, 100), '-5');
  assert.equal(renderValue(Buffer.from([1]), 1, 16, 100), 'true');
  assert.equal(renderValue(Buffer.from([0xde, 0xad]), 1, 17, 100), '\\xdead');
  assert.equal(renderValue(Buffer.from('hello'), 0, 25, 100), 'hello');
  assert.equal(renderValue(null, 0, 25, 100), null);
  const row = encodeDataRow([Buffer.from('a'), null, Buffer.from('xyz')]);
  assert.equal(row.readInt32BE(1), row.length - 1);
  assert.deepEqual(decodeDataRow(row, 5, row.length).map((v) => v?.toString() ?? null), ['a', null, 'xyz']);
});
