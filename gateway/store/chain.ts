import { randomBytes, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EventRow } from './rows';

/** The fields of an event that its hash covers, exactly as stored. */
export type ChainedEvent = Omit<EventRow, 'hash'>;

/** The chain starts from a value bound to the session id, so an event cannot move to another session unnoticed. */
export function genesisHash(sessionId: string): string {
  return createHash('sha256').update(`flightlog-session:v1\n${sessionId}`).digest('hex');
}

export function canonicalEvent(e: ChainedEvent): string {
  return JSON.stringify([e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data]);
}

/** hash = SHA-256(prev_hash ‖ canonical(event)) */
export function chainHash(prevHash: string, e: ChainedEvent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalEvent(e)).digest('hex');
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
