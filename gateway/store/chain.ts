import * as crypto from 'node:crypto';
import { randomBytes, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandRow, EventRow, FindingRow } from './rows';

/** The fields of an event that its hash covers, exactly as stored. */
export type ChainedEvent = Omit<EventRow, 'hash'>;

/**
 * SHA-256 (hex) of a string in one call: crypto.hash (Node ≥ 20.12) skips the Hash object, which
 * costs more than the hashing itself for the short texts of most events. Same bytes either way.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex');
}

/** The chain starts from a value bound to the session id, so an event cannot move to another session unnoticed. */
export function genesisHash(sessionId: string): string {
  return sha256Hex(`flightlog-session:v1\n${sessionId}`);
}

export function canonicalEvent(e: ChainedEvent): string {
  return JSON.stringify([e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data]);
}

/** hash = SHA-256(prev_hash ‖ canonical(event)) */
export function chainHash(prevHash: string, e: ChainedEvent): string {
  return sha256Hex(`${prevHash}\n${canonicalEvent(e)}`);
}

export function sealMessage(sessionId: string, eventCount: number, lastHash: string): Buffer {
  return Buffer.from(`flightlog-seal:v1\n${sessionId}\n${eventCount}\n${lastHash}`);
}

export interface ChainCheck {
  ok: boolean;
  /** the first event (seq) whose hash or order does not match */
  badSeq?: number;
  reason?: string;
  lastHash: string;
  count: number;
}

/** Recomputes a session's chain over its events in stored order. */
export function verifyChain(sessionId: string, events: Iterable<ChainedEvent & { hash: string }>): ChainCheck {
  let prev = genesisHash(sessionId);
  let expectSeq = 1;
  let count = 0;
  for (const e of events) {
    if (e.seq !== expectSeq) return { ok: false, badSeq: e.seq, reason: `expected seq ${expectSeq}, found ${e.seq}`, lastHash: prev, count };
    const h = chainHash(prev, e);
    if (h !== e.hash) return { ok: false, badSeq: e.seq, reason: 'hash does not match the event content', lastHash: prev, count };
    prev = h;
    expectSeq++;
    count++;
  }
  return { ok: true, lastHash: prev, count };
}

export interface GatewayKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  /** `SHA256:<base64>` of the raw public key, as users compare it */
  fingerprint: string;
}

export function keyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ format: 'der', type: 'spki' });
  return 'SHA256:' + createHash('sha256').update(der).digest('base64').replace(/=+$/, '');
}

/** The gateway's Ed25519 signing key, generated on first start and kept in the data dir (0600). */
export function ensureGatewayKey(dataDir: string): GatewayKey {
  const keyFile = path.join(dataDir, 'gateway-key.pem');
  const pubFile = path.join(dataDir, 'gateway-key.pub.pem');
  if (!fs.existsSync(keyFile)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    fs.writeFileSync(pubFile, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
  }
  const privateKey = createPrivateKey(fs.readFileSync(keyFile));
  const publicKeyPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
  if (!fs.existsSync(pubFile)) fs.writeFileSync(pubFile, publicKeyPem, { mode: 0o644 });
  return { privateKey, publicKeyPem, fingerprint: keyFingerprint(publicKeyPem) };
}

export function signSeal(key: KeyObject, msg: Buffer): string {
  return sign(null, msg, key).toString('base64');
}

export function verifySeal(publicKeyPem: string, msg: Buffer, signature: string): boolean {
  try {
    return verify(null, msg, createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The keyed-fingerprint key for masking (HMAC), 32 random bytes in the data dir (0600). */
export function ensureFingerprintKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'fingerprint.key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      fs.writeFileSync(file, randomBytes(32), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return fs.readFileSync(file);
}

/**
 * Sessions recorded from this version on put `chain: 2` in their open event: their chain also
 * covers every command, finding and lineage link (as digests in `command`, `close` and `lineage`
 * events). Sessions without it were recorded before and have only their events chained.
 */
export const ROW_CHAIN_VERSION = 2;

/** A command row as its digest covers it: every column but caused_by, which the chain carries in the clear. */
export type CommandFacts = Omit<CommandRow, 'caused_by'>;

/** A finding row as its digest covers it: all of it. */
export type FindingFacts = FindingRow;

const q = (s: string | null): string => (s === null ? 'null' : JSON.stringify(s));
/** A number column as JSON; a store edit that put text in it must not digest like the number or null it reads as. */
const n = (x: number | null): string => (x === null ? 'null' : typeof x === 'number' ? String(x) : JSON.stringify(x));

/** SHA-256 of a command row's canonical form: `flightlog-command:v1\n` + its columns as a JSON array. */
export function commandDigest(c: CommandFacts): string {
  return sha256Hex(
    `flightlog-command:v1\n[${c.id},${q(c.session_id)},${c.idx},${q(c.kind)},${q(c.text)},${q(c.classification)},${c.targets},${q(c.status)},${q(c.started_at)},${c.started_us},${n(c.ended_us)},${n(c.start_seq)},${n(c.end_seq)},${c.detail ?? 'null'},${c.result ?? 'null'},${q(c.error)}]`,
  );
}

export function findingDigest(f: FindingFacts): string {
  return sha256Hex(
    `flightlog-finding:v1\n[${f.id},${q(f.session_id)},${n(f.command_id)},${n(f.event_seq)},${q(f.category)},${q(f.kind)},${q(f.fp)},${q(f.direction)},${n(f.masked_live)},${f.detail ?? 'null'},${q(f.created_at)}]`,
  );
}

/** What a retention tombstone says about a removed session; its signature covers all of it. */
export interface TombstoneFacts {
  session_id: string;
  connection: string;
  started_at: string;
  ended_at: string | null;
  event_count: number;
  last_hash: string | null;
  removed_at: string;
  reason: string;
}

export function tombstoneMessage(t: TombstoneFacts): Buffer {
  return Buffer.from(`flightlog-tombstone:v1\n${JSON.stringify([t.session_id, t.connection, t.started_at, t.ended_at, t.event_count, t.last_hash, t.removed_at, t.reason])}`);
}
