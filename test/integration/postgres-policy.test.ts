/**
 * Guardrails and fail-closed in the Postgres listener, against a real PostgreSQL. The listener
 * runs with a hand-made context here (a policy that blocks DROP, a recorder we can fail on
 * purpose), since the gateway's own policy allows everything until the guardrail issue lands.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Client } from 'pg';
import type { Listener, ListenerContext } from '../../gateway/core/listener';
import type { CommandFinish, CommandStart, Json, PolicyInput, SessionRecorder } from '../../gateway/common/types';
import { startPostgresListener } from '../../gateway/postgres/listener';
import * as wire from '../../gateway/postgres/wire';
import { errorFields, RawPgClient, startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { tempDir } from '../helpers/tmp';

interface Recorded {
  start: CommandStart;
  finish?: CommandFinish;
}

class MemorySession implements SessionRecorder {
  readonly id = 'mem';
  failed = false;
  commands: Recorded[] = [];
  events: { kind: string; data: Json }[] = [];
  findings: unknown[] = [];
  closed: { status?: string; reason?: string } | null = null;
  event(kind: string, _d: unknown, data: Json): number {
    this.events.push({ kind, data });
    return this.events.length;
  }
  startCommand(start: CommandStart) {
    const rec: Recorded = { start };
    this.commands.push(rec);
    return { id: this.commands.length, finish: (f: CommandFinish) => { rec.finish = f; } };
  }
  finding(f: unknown): void {
    this.findings.push(f);
  }
  flushed(): Promise<void> {
    return Promise.resolve();
  }
  onTerminate(): void {}
  close(status?: string, reason?: string): void {
    this.closed ??= { status, reason };
  }
}

let pg: PostgresServer;
let listener: Listener;
let dataDir: string;
const sessions: MemorySession[] = [];
const policyInputs: PolicyInput[] = [];

before(async () => {
  pg = await startPostgres();
  dataDir = tempDir('flightlog-pgpolicy-');
  const ctx: ListenerContext = {
    connection: {
      name: 'db', protocol: 'postgres', listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app' },
      identities: ['claude'], mask: 'record', options: {},
    },
    recording: { headRows: 100, payloadHead: 65536 },
    dataDir,
    secrets: { password: pg.app.password },
    masker: { maskText: (text) => ({ text, hits: [] }), maskValue: (value) => ({ value, hits: [] }), addKnownSecret: () => undefined, placeholder: () => '[MASKED]' },
    policy: (input) => {
      policyInputs.push(input);
      return /\bdrop\b/i.test(input.text) ? { action: 'block', rule: 'no-drop', reason: 'DROP is not allowed' } : { action: 'allow' };
    },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    authenticate: (identity, cred) => ('token' in cred && cred.token === 'good' ? { ok: true, identity } : { ok: false, reason: 'bad-credential' }),
    openSession: () => {
      const s = new MemorySession();
      sessions.push(s);
      return s;
    },
    recordFailedAttempt: () => undefined,
  };
  listener = await startPostgresListener(ctx);
});

after(async () => {
  await listener?.close();
  await pg?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function port(): number {
  return Number(listener.address.split(':').pop());
}

test('a blocked simple query gets 42501 naming the rule, is never sent, and the session goes on', async () => {
  const c = new Client({ host: '127.0.0.1', port: port(), user: 'claude', password: 'good', database: 'app' });
  await c.connect();
  await c.query('create table keep_me (a int)');
  await assert.rejects(c.query('drop table keep_me'), (e: { code?: string; message: string }) => e.code === '42501' && /blocked by guardrail "no-drop": DROP is not allowed/.test(e.message));
  // extended protocol: the blocked Parse is answered in order and the pipeline resyncs
  await assert.rejects(c.query({ text: 'drop table keep_me', values: [] }), (e: { code?: string }) => e.code === '42501');
  const r = await c.query('select count(*)::int as n from keep_me');
  assert.equal(r.rows[0].n, 0);
  await c.end();
  const s = sessions.at(-1)!;
  const blocked = s.commands.filter((x) => x.finish?.status === 'blocked');
  assert.equal(blocked.length, 2);
  assert.equal(s.findings.length, 2);
  assert.ok(policyInputs.some((p) => p.classification === 'ddl' && p.identity === 'claude'));
  assert.equal(pg.psql("select count(*) from pg_tables where tablename = 'keep_me'", 'app').trim(), '1');
});

test('a block in the middle of a pipeline comes back in order', async () => {
  const raw = await RawPgClient.login('127.0.0.1', port(), 'claude', 'good');
  const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
  const parse = (sql: string) => wire.message('P', Buffer.concat([wire.cstr(''), wire.cstr(sql), i16(0)]));
  const bind = wire.message('B', Buffer.concat([wire.cstr(''), wire.cstr(''), i16(0), i16(0), i16(0)]));
  const exec = wire.message('E', Buffer.concat([wire.cstr(''), i32(0)]));
  const sync = wire.message('S', Buffer.alloc(0));
  raw.send(Buffer.concat([parse('select 1'), bind, exec, sync, parse('drop table x'), bind, exec, sync, parse('select 3'), bind, exec, sync]));
  const a = await raw.until('Z');
  const b = await raw.until('Z');
  const c = await raw.until('Z');
  assert.equal(a.map((f) => f.type).join(''), '12DCZ');
  assert.equal(b.map((f) => f.type).join(''), 'EZ');
  assert.equal(errorFields(b[0]).C, '42501');
  assert.equal(c.map((f) => f.type).join(''), '12DCZ');
  raw.close();
});

test('GSSENCRequest is refused with N and the startup goes on', async () => {
  const sock = net.connect({ host: '127.0.0.1', port: port() });
  let got = Buffer.alloc(0);
  sock.on('data', (d) => { got = Buffer.concat([got, d]); });
  await new Promise((r) => sock.once('connect', r));
  sock.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]));
  const wait = async (n: number) => { for (let i = 0; i < 100 && got.length < n; i++) await new Promise((r) => setTimeout(r, 20)); };
  await wait(1);
  assert.equal(got.toString('latin1', 0, 1), 'N');
  sock.write(wire.startupMessage({ user: 'claude', database: 'app' }));
  await wait(1 + 9);
  assert.equal(got.toString('latin1', 1, 2), 'R');
  assert.equal(got.readInt32BE(6), 3);
  sock.destroy();
});

test('fail-closed: once recording fails, new statements are refused and not sent', async () => {
  const c = new Client({ host: '127.0.0.1', port: port(), user: 'claude', password: 'good', database: 'app' });
  await c.connect();
  await c.query('create table if not exists failclosed (a int)');
  sessions.at(-1)!.failed = true;
  await assert.rejects(c.query('insert into failclosed values (1)'), (e: { code?: string; message: string }) => e.code === '58030' && /recording failed, command not forwarded/.test(e.message));
  await assert.rejects(c.query({ text: 'insert into failclosed values ($1)', values: [2] }), (e: { code?: string }) => e.code === '58030');
  await c.end();
  assert.equal(pg.psql('select count(*) from failclosed', 'app').trim(), '0');
});

test('wrong token: FATAL 28P01', async () => {
  const c = new Client({ host: '127.0.0.1', port: port(), user: 'claude', password: 'bad', database: 'app' });
  await assert.rejects(c.connect(), (e: { code?: string }) => e.code === '28P01');
});
