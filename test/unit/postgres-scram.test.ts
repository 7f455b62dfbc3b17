/**
 * SCRAM-SHA-256: the shared math against RFC 7677's worked example, the server side against the
 * client side, and the verifiers the store keeps per token (one salt per identity).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, openDb } from '../../gateway/store/db';
import { addIdentity, addRunToken, checkScramToken, hashToken, revokeIdentity, revokeRunTokens, scramVerifiers } from '../../gateway/store/identities';
import { ScramClient, ScramError, ScramServer, scramVerifier } from '../../gateway/core/scram';
import type { ScramVerifierSet } from '../../gateway/core/listener';
import { tempDir } from '../helpers/tmp';

// RFC 7677 section 3
const RFC = {
  password: 'pencil',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonceSuffix: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const RFC_SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');

function tmpDb() {
  return openDb(tempDir('flightlog-scram-'));
}

test('the client side reproduces RFC 7677 byte for byte', () => {
  const c = new ScramClient(RFC.password, 'rOprNGfwEbeRWgbNEkqO', 'user');
  assert.equal(c.first().toString(), RFC.clientFirst);
  assert.equal(c.final(RFC.serverFirst).toString(), RFC.clientFinal);
  c.verify(RFC.serverFinal);
});

test('the server side, from a stored verifier only, accepts RFC 7677 proof and signs as the RFC does', () => {
  const v = scramVerifier(RFC.password, RFC_SALT, 4096);
  const server = new ScramServer({ salt: RFC_SALT, iterations: 4096, verifiers: [{ id: 'a', ...v }] }, RFC.serverNonceSuffix);
  assert.equal(server.first(RFC.clientFirst), RFC.serverFirst);
  assert.deepEqual(server.final(RFC.clientFinal), { id: 'a', serverFinal: RFC.serverFinal });
});

test('the server refuses a wrong proof, a changed nonce, channel binding and a -PLUS request', () => {
  const v = scramVerifier(RFC.password, RFC_SALT, 4096);
  const make = () => new ScramServer({ salt: RFC_SALT, iterations: 4096, verifiers: [{ id: 1, ...v }] }, RFC.serverNonceSuffix);
  let s = make();
  s.first(RFC.clientFirst);
  assert.equal(s.final(RFC.clientFinal.replace('p=dHzb', 'p=dHzc')), null);
  s = make();
  s.first(RFC.clientFirst);
  assert.throws(() => s.final(RFC.clientFinal.replace('r=rOpr', 'r=xOpr')), ScramError);
  s = make();
  s.first(RFC.clientFirst);
  assert.throws(() => s.final(RFC.clientFinal.replace('c=biws', 'c=eSws')), ScramError);
  assert.throws(() => make().first('p=tls-server-end-point,,n=user,r=abc'), /PLUS/);
  assert.throws(() => make().first('garbage'), ScramError);
  // a wrong password fails against the stored verifier
  const c = new ScramClient('not-pencil', undefined, '');
  s = make();
  const sf = s.first(c.first().toString());
  assert.equal(s.final(c.final(sf).toString()), null);
});

function exchange(set: ScramVerifierSet, token: string): number | null {
  const server = new ScramServer({ salt: set.salt, iterations: set.iterations, verifiers: set.verifiers.map((v) => ({ ...v, id: v.tokenId })) });
  const client = new ScramClient(token);
  const sf = server.first(client.first().toString());
  const r = server.final(client.final(sf).toString());
  if (r) client.verify(r.serverFinal);
  return r ? r.id : null;
}

test('the store keeps a verifier per token under one salt per identity, and tells which token (and run) answered', () => {
  const db = tmpDb();
  const own = addIdentity(db, 'claude', 'agent');
  const runTok = addRunToken(db, 'claude', 'run-1');
  const set = scramVerifiers(db, 'claude');
  assert.ok(set);
  assert.equal(set.iterations, 4096);
  assert.equal(set.verifiers.length, 2);
  const ownId = exchange(set, own);
  const runId = exchange(set, runTok);
  assert.ok(ownId !== null && runId !== null && ownId !== runId);
  assert.deepEqual(checkScramToken(db, 'claude', ownId), { ok: true, identity: 'claude' });
  assert.deepEqual(checkScramToken(db, 'claude', runId), { ok: true, identity: 'claude', runId: 'run-1' });
  assert.equal(checkScramToken(db, 'someone-else', ownId).ok, false, 'a token id of another identity is refused');
  assert.equal(exchange(set, 'flt_wrong'), null);

  // nothing stored lets anyone log in: no raw token anywhere in the tokens table
  const raw = JSON.stringify(db.prepare('SELECT * FROM tokens').all()) + JSON.stringify(db.prepare('SELECT * FROM identities').all());
  assert.ok(!raw.includes(own) && !raw.includes(runTok));

  // a revoked run token still matches its verifier, so its owner is told "revoked"
  revokeRunTokens(db, 'run-1');
  const after = scramVerifiers(db, 'claude');
  assert.ok(after);
  const revokedId = exchange(after, runTok);
  assert.equal(revokedId, runId);
  assert.equal(checkScramToken(db, 'claude', runId).reason, 'revoked');
  revokeIdentity(db, 'claude');
  assert.equal(checkScramToken(db, 'claude', ownId).reason, 'revoked');
  // re-created identity keeps its salt, so old verifiers stay consistent
  const again = addIdentity(db, 'claude', 'agent');
  const set3 = scramVerifiers(db, 'claude');
  assert.ok(set3);
  assert.deepEqual(set3.salt, set.salt);
  const newId = exchange(set3, again);
  assert.ok(newId !== null);
  assert.equal(checkScramToken(db, 'claude', newId).ok, true);
  assert.equal(scramVerifiers(db, 'nobody'), null);
  db.close();
});

test('tokens minted before migration 4 have no verifier: the identity stays on cleartext until they are gone', () => {
  const dir = tempDir('flightlog-scram-');
  const old = new Database(path.join(dir, 'flightlog.db'));
  for (const m of MIGRATIONS.filter((x) => x.version <= 3)) old.exec(m.sql);
  old.pragma('user_version = 3');
  old.prepare("INSERT INTO identities (name, kind, created_at) VALUES ('legacy', 'agent', 'x')").run();
  old.prepare("INSERT INTO tokens (identity_id, token_hash, created_at) VALUES (1, ?, 'x')").run(hashToken('flt_legacy'));
  old.close();
  const db = openDb(dir);
  assert.equal(scramVerifiers(db, 'legacy'), null);
  addRunToken(db, 'legacy', 'run-2');
  assert.equal(scramVerifiers(db, 'legacy'), null, 'a live token without a verifier keeps the identity on cleartext');
  db.prepare('UPDATE tokens SET revoked_at = ? WHERE run_id IS NULL').run(new Date().toISOString());
  assert.equal(scramVerifiers(db, 'legacy')?.verifiers.length, 1);
  db.close();
});
