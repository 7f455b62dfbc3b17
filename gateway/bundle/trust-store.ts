/**
 * Public keys the user has marked trusted (`flightlog trust add KEYFILE`), kept in
 * `<dataDir>/trusted-keys.json`. Verification names a trusted signer; any other key is "unknown".
 */
import { createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { keyFingerprint } from '../store/chain';
import { BundleError } from './errors';
import { DEFAULT_LIMITS, PUBLIC_KEY } from './format';
import { TarReader } from './tar';
import type { TrustedKey } from './verify';

export function trustFile(dataDir: string): string {
  return path.join(dataDir, 'trusted-keys.json');
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,62}$/;

export function loadTrustedKeys(dataDir: string): TrustedKey[] {
  const file = trustFile(dataDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new BundleError('E_TRUST_READ', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new BundleError('E_TRUST_READ', `${file} is not valid JSON; fix or remove it`);
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new BundleError('E_TRUST_READ', `${file} has no "keys" list; fix or remove it`);
  const out: TrustedKey[] = [];
  for (const k of keys as Array<Record<string, unknown>>) {
    if (typeof k?.name !== 'string' || typeof k.publicKeyPem !== 'string') continue;
    try {
      // the fingerprint is recomputed from the key, never taken from the file on trust
      out.push({ name: k.name, publicKeyPem: k.publicKeyPem, fingerprint: keyFingerprint(k.publicKeyPem), addedAt: typeof k.addedAt === 'string' ? k.addedAt : undefined });
    } catch {
      // an entry that is not a key trusts nothing
    }
  }
  return out;
}

function save(dataDir: string, keys: TrustedKey[]): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = trustFile(dataDir);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify({ version: 1, keys }, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Reads a public key file (SPKI PEM, as `gateway-key.pub.pem`); refuses private keys and non-Ed25519 keys. */
export function readPublicKeyFile(keyFile: string): string {
  let text: string;
  try {
    text = fs.readFileSync(keyFile, 'utf8');
  } catch (err) {
    throw new BundleError('E_FILE', `cannot read ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new BundleError('E_TRUST_PRIVATE', `${keyFile} holds a private key; trust the public key (gateway-key.pub.pem) instead`);
  let pem: string;
  try {
    const k = createPublicKey(text);
    if (k.asymmetricKeyType !== 'ed25519') throw new BundleError('E_TRUST_KEY', `${keyFile} is a ${k.asymmetricKeyType} key; Flightlog gateways sign with Ed25519`);
    pem = k.export({ format: 'pem', type: 'spki' }).toString();
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError('E_TRUST_KEY', `${keyFile} is not a PEM public key`);
  }
  return pem;
}

/** Adds (or renames) a trusted key; returns the entry. */
export function addTrustedKey(dataDir: string, keyFile: string, name?: string): TrustedKey {
  const pem = readPublicKeyFile(keyFile);
  const label = name ?? path.basename(keyFile).replace(/\.(pub\.)?pem$/i, '').replace(/[^A-Za-z0-9 ._@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') ?? '';
  return addTrustedPem(dataDir, pem, label);
}

function addTrustedPem(dataDir: string, pem: string, label: string): TrustedKey {
  const fingerprint = keyFingerprint(pem);
  const finalName = label || fingerprint.slice(7, 19);
  if (!NAME_RE.test(finalName)) throw new BundleError('E_TRUST_NAME', `invalid name "${finalName}": use letters, digits, space, '.', '_', '@' or '-' (at most 63)`);
  const keys = loadTrustedKeys(dataDir);
  const clash = keys.find((k) => k.name === finalName && k.fingerprint !== fingerprint);
  if (clash) throw new BundleError('E_TRUST_NAME', `the name "${finalName}" is already used for ${clash.fingerprint} (pick another with --name)`);
  const entry: TrustedKey = { name: finalName, fingerprint, publicKeyPem: pem, addedAt: new Date().toISOString() };
  save(dataDir, [...keys.filter((k) => k.fingerprint !== fingerprint), entry]);
  return entry;
}

export function removeTrustedKey(dataDir: string, nameOrFingerprint: string): TrustedKey {
  const keys = loadTrustedKeys(dataDir);
  const hit = keys.find((k) => k.name === nameOrFingerprint || k.fingerprint === nameOrFingerprint);
  if (!hit) throw new BundleError('E_NOT_FOUND', `no trusted key "${nameOrFingerprint}"`);
  save(dataDir, keys.filter((k) => k !== hit));
  return hit;
}

/** The local gateway's own public key, if it has one: a bundle this machine made is trusted as "this gateway". */
export function ownGatewayKey(dataDir: string): TrustedKey | null {
  const file = path.join(dataDir, 'gateway-key.pub.pem');
  try {
    const pem = fs.readFileSync(file, 'utf8');
    return { name: 'this gateway', fingerprint: keyFingerprint(pem), publicKeyPem: pem };
  } catch {
    return null;
  }
}

/**
 * Trusts the key that signed a bundle (the app's "Trust this key…"), once the user has seen its
 * fingerprint: the key is read from the bundle again and must still be the one they confirmed.
 */
export async function trustBundleSigner(dataDir: string, bundleFile: string, fingerprint: string, name: string): Promise<TrustedKey> {
  const reader = await TarReader.open(bundleFile, { maxMembers: DEFAULT_LIMITS.maxMembers, maxMemberBytes: DEFAULT_LIMITS.maxStreamMemberBytes });
  let pem: string | null = null;
  try {
    for (let e = await reader.next(); e; e = await reader.next()) {
      if (e.name === PUBLIC_KEY) {
        if (e.size > 64 * 1024) break;
        pem = (await reader.readAll(e)).toString('utf8');
        break;
      }
    }
  } finally {
    await reader.close();
  }
  if (pem === null) throw new BundleError('E_TRUST_KEY', `${path.basename(bundleFile)} carries no ${PUBLIC_KEY}`);
  let actual: string;
  try {
    const k = createPublicKey(pem);
    if (k.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    pem = k.export({ format: 'pem', type: 'spki' }).toString();
    actual = keyFingerprint(pem);
  } catch {
    throw new BundleError('E_TRUST_KEY', `${path.basename(bundleFile)} carries no valid Ed25519 key`);
  }
  if (actual !== fingerprint) throw new BundleError('E_TRUST_CHANGED', `the bundle's key is ${actual}, not the ${fingerprint} you confirmed; nothing was trusted`);
  return addTrustedPem(dataDir, pem, name.trim());
}
