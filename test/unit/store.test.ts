import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION, openDb, storePath } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey, sealMessage, verifyChain, verifySeal } from '../../gateway/store/chain';
import { getSession, iterateRawEvents, listSessions, search, commandsTouching, listFindings } from '../../gateway/store/queries';
import { addIdentity, checkCredential, revokeIdentity, addIdentityKey, listIdentities } from '../../gateway/store/identities';
import { createMasker } from '../../gateway/masking';
import { tempDir } from '../helpers/tmp';

function tmp(): string {
  return tempDir('flightlog-store-');
}

function setup() {
  const dir = tmp();
  const db = openDb(dir);
  const key = ensureGatewayKey(dir);
  const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
  const rec = new Recorder(db, { masker, signingKey: key.privateKey, keyFingerprint: key.fingerprint });
  return { dir, db, key, masker, rec };
}

test('events are stored in order with a hash chain that verifies, and close seals it', async () => {
  const { db, key, rec } = setup();
  const s = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const seqs = [];
  for (let i = 0; i < 50; i++) seqs.push(s.event('bytes', i % 2 ? 'upstream→client' : 'client→upstream', { i }));
  s.close('closed', 'client quit');
  await rec.flush();
  assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 2), 'seq numbers follow the open event without gaps');
  const events = [...iterateRawEvents(db, s.id)];
  assert.equal(events.length, 52);
  assert.equal(events[0].kind, 'open');
  assert.equal(events[51].kind, 'close');
  const check = verifyChain(s.id, events);
  assert.equal(check.ok, true);
  const detail = getSession(db, s.id);
  assert.equal(detail.status, 'closed');
  assert.equal(detail.endReason, 'client quit');
  assert.equal(detail.lastHash, check.lastHash);
  assert.ok(detail.seal);
  assert.equal(verifySeal(key.publicKeyPem, sealMessage(s.id, 52, check.lastHash), detail.seal!), true);
  // A seal does not verify for another chain end.
  assert.equal(verifySeal(key.publicKeyPem, sealMessage(s.id, 51, check.lastHash), detail.seal!), false);
});

test('a changed, dropped or reordered event is named by the chain check', async () => {
  const { db, rec } = setup();
  const s = rec.openSession({ connection: 'c', protocol: 'ssh', identity: 'a' });
  for (let i = 0; i < 10; i++) s.event('o', 'upstream→client', `line ${i}`);
  s.close();
  await rec.flush();
  const events = [...iterateRawEvents(db, s.id)];
  const altered = events.map((e) => ({ ...e }));
  altered[4].data = JSON.stringify('line X');
  assert.equal(verifyChain(s.id, altered).badSeq, 5);
  const dropped = events.filter((e) => e.seq !== 7);
  assert.equal(verifyChain(s.id, dropped).badSeq, 8);
  const swapped = [...events];
  [swapped[2], swapped[3]] = [swapped[3], swapped[2]];
  assert.equal(verifyChain(s.id, swapped).badSeq, 4);
  // The same events under another session id do not verify: the chain is bound to its session.
  assert.equal(verifyChain('ses_other', events).ok, false);
});

test('commands are searchable with FTS5 and carry their targets and results', async () => {
  const { db, rec } = setup();
  const s = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const c1 = s.startCommand({ kind: 'sql', text: 'SELECT email FROM users WHERE id = 1', classification: 'read', targets: ['public.users'] });
  c1.finish({ status: 'ok', result: { columns: ['email'], rows: [['a@example.com']], rowCount: 1, tag: 'SELECT 1' } });
  const c2 = s.startCommand({ kind: 'sql', text: 'DROP TABLE orders', classification: 'ddl', targets: ['public.orders'] });
  c2.finish({ status: 'error', error: 'permission denied for table orders' });
  s.close();
  await rec.flush();
  const hits = search(db, 'users');
  assert.equal(hits.length, 1);
  assert.equal(hits[0].commandId, c1.id);
  assert.equal(search(db, 'drop orders').length, 1, 'several words all match');
  assert.equal(search(db, '"); DROP --').length, 1, 'punctuation never breaks the query syntax');
  assert.equal(search(db, 'nothing-like-this').length, 0);
  assert.deepEqual(commandsTouching(db, 'public.USERS').map((c) => c.id), [c1.id]);
  const d = getSession(db, s.id);
  assert.equal(d.commandCount, 2);
  assert.deepEqual(d.commands.map((c) => [c.index, c.status]), [[1, 'ok'], [2, 'error']]);
  assert.deepEqual((d.commands[0].result as { rowCount: number }).rowCount, 1);
  assert.equal(d.commands[1].error, 'permission denied for table orders');
  assert.ok(d.commands[0].startSeq! > 0);
});

test('known secrets are masked before they are written, and every sighting is a finding', async () => {
  const { dir, db, rec, masker } = setup();
  masker.addKnownSecret('upstream-password', 'hunter2-very-secret');
  const s = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const c = s.startCommand({ kind: 'sql', text: "ALTER ROLE app PASSWORD 'hunter2-very-secret'" });
  c.finish({ status: 'ok', result: { rows: [['hunter2-very-secret']] } });
  s.event('notice', 'upstream→client', { message: 'the password hunter2-very-secret is weak' });
  s.close('closed', 'bye hunter2-very-secret');
  await rec.flush();
  db.close();
  const raw = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f)).includes(Buffer.from('hunter2-very-secret')));
  assert.deepEqual(raw.filter(Boolean), [], 'no file in the data dir holds the secret');
  const db2 = openDb(dir);
  const findings = listFindings(db2);
  assert.equal(findings.length, 4);
  assert.ok(findings.every((f) => f.kind === 'upstream-password' && f.fp === findings[0].fp));
  assert.deepEqual(findings.map((f) => f.seenByAgent).sort(), [false, false, true, true]);
  const d = getSession(db2, s.id);
  assert.match(d.commands[0].text, /\[MASKED:upstream-password:[0-9a-f]{10}\]/);
});

test('sessions list newest first, with counts, and resolve by unique prefix', async () => {
  const { db, rec } = setup();
  const a = rec.openSession({ connection: 'a', protocol: 'postgres', identity: 'x' });
  await new Promise((r) => setTimeout(r, 5));
  const b = rec.openSession({ connection: 'b', protocol: 'ssh', identity: 'y' });
  b.startCommand({ kind: 'shell', text: 'ls' }).finish({ status: 'ok', result: { exitCode: 0 } });
  await rec.flush();
  const list = listSessions(db).sessions;
  assert.deepEqual(list.map((s) => s.id), [b.id, a.id]);
  assert.equal(list[0].status, 'live');
  assert.equal(list[0].commandCount, 1);
  assert.equal(getSession(db, b.id.slice(0, b.id.length - 3)).id, b.id);
  a.close();
  b.close();
});

test('migrations bring an old store forward and keep its data', () => {
  const dir = tmp();
  const old = new Database(storePath(dir));
  old.exec(MIGRATIONS[0].sql);
  old.pragma('user_version = 1');
  old.prepare("INSERT INTO identities (name, kind, created_at) VALUES ('legacy', 'agent', '2026-01-01')").run();
  old.close();
  const db = openDb(dir);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.deepEqual(listIdentities(db).map((i) => i.name), ['legacy']);
  // identity_keys arrived with migration 2
  assert.doesNotThrow(() => db.prepare('SELECT * FROM identity_keys').all());
  db.close();
  const newer = new Database(storePath(dir));
  newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  newer.close();
  assert.throws(() => openDb(dir), /newer Flightlog/);
});

test('identities: tokens are stored hashed, checked, revoked; keys identify too', () => {
  const dir = tmp();
  const db = openDb(dir);
  const token = addIdentity(db, 'claude', 'agent');
  assert.match(token, /^flt_[A-Za-z0-9]{40}$/);
  db.close();
  assert.equal(fs.readFileSync(storePath(dir)).includes(Buffer.from(token)), false, 'the token itself is not stored');
  const db2 = openDb(dir);
  assert.deepEqual(checkCredential(db2, 'claude', { token }), { ok: true, identity: 'claude' });
  assert.deepEqual(checkCredential(db2, '', { token }), { ok: true, identity: 'claude' });
  assert.equal(checkCredential(db2, 'someone-else', { token }).ok, false);
  assert.equal(checkCredential(db2, 'claude', { token: token + 'x' }).reason, 'bad-credential');
  assert.throws(() => addIdentity(db2, 'claude', 'agent'), /already exists/);
  assert.throws(() => addIdentity(db2, 'bad name!', 'agent'), /invalid identity name/);
  const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl agent@laptop';
  const fp = addIdentityKey(db2, 'claude', pub);
  assert.match(fp, /^SHA256:/);
  const blob = Buffer.from(pub.split(' ')[1], 'base64');
  assert.equal(checkCredential(db2, 'claude', { publicKey: { algo: 'ssh-ed25519', data: blob } }).ok, true);
  revokeIdentity(db2, 'claude');
  assert.equal(checkCredential(db2, 'claude', { token }).reason, 'revoked');
  assert.equal(checkCredential(db2, 'claude', { publicKey: { algo: 'ssh-ed25519', data: blob } }).reason, 'revoked');
  assert.throws(() => addIdentityKey(db2, 'nobody', pub), /no identity/);
});

test('a failed store write fails the session closed: flushed() rejects and failed is set', async () => {
  const { db, rec } = setup();
  const s = rec.openSession({ connection: 'a', protocol: 'postgres', identity: 'x' });
  await rec.flush();
  db.exec('DROP TABLE events');
  s.event('bytes', 'client→upstream', 'x');
  // the journal took the event; loading it into the store fails
  await assert.rejects(rec.flush());
  assert.equal(s.failed, true);
  s.event('bytes', 'client→upstream', 'y');
  await assert.rejects(s.flushed());
});

test('a secret in a command is one finding per direction, however many records of the command carry it', async () => {
  const { db, rec, masker } = setup();
  masker.addKnownSecret('upstream-password', 'pw-0123456789-secret');
  const s = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const sql = "SELECT * FROM t WHERE pw = 'pw-0123456789-secret'";
  const c = s.startCommand({ kind: 'sql', text: sql });
  s.event('query', 'client→upstream', { sql }, { commandId: c.id });
  s.event('result', 'upstream→client', { rows: [['pw-0123456789-secret']] }, { commandId: c.id });
  c.finish({ status: 'ok', result: { rows: [['pw-0123456789-secret']] } });
  s.close();
  await rec.flush();
  const f = listFindings(db).filter((x) => x.kind === 'upstream-password');
  assert.deepEqual(f.map((x) => x.direction).sort(), ['client→upstream', 'upstream→client']);
  assert.equal(getSession(db, s.id).findingCount, 2);
});
