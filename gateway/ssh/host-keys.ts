// first: ssh2's cipher module must load with pooled padding (see the module)
import './ssh2-padding';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { utils } from 'ssh2';

/** OpenSSH-style fingerprint of a raw public key blob: `SHA256:` + unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + Math.min(len, 64)).toString('latin1');
}

/** `type base64` (OpenSSH authorized_keys form, without comment) → raw blob; null if malformed. */
export function parsePinnedKey(text: string): Buffer | null {
  const parts = text.trim().split(/\s+/);
  const b64 = parts.length >= 2 ? parts[1] : parts[0];
  if (!b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return null;
  const blob = Buffer.from(b64, 'base64');
  return blob.length > 4 ? blob : null;
}

export function formatPinnedKey(blob: Buffer): string {
  return `${blobKeyType(blob)} ${blob.toString('base64')}`;
}

/**
 * ssh2's ed25519 generator strips leading zero bytes from the public key, so about 1 key in 256
 * cannot be parsed back (mscdex/ssh2#1513): keep only a key ssh2 itself reads.
 */
function generateParsableKey(): string {
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair.private;
  }
  throw new Error('could not generate a usable ed25519 host key');
}

/**
 * The gateway's own SSH host key: generated once (ed25519) and kept in the data dir, so agents'
 * known_hosts entries stay valid across restarts.
 */
export function loadOrCreateHostKey(dataDir: string): string {
  const dir = path.join(dataDir, 'ssh');
  const file = path.join(dir, 'host_ed25519');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
  let privateKey: string;
  try {
    privateKey = generateParsableKey();
  } catch {
    // Older ssh2 builds without key generation: fall back to OpenSSH's own tool.
    const tmp = `${file}.tmp-${process.pid}`;
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'flightlog', '-f', tmp]);
    privateKey = fs.readFileSync(tmp, 'utf8');
    fs.rmSync(tmp, { force: true });
    fs.rmSync(`${tmp}.pub`, { force: true });
  }
  // wx: two gateways starting at once must not overwrite each other's key.
  try {
    fs.writeFileSync(file, privateKey, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8');
    throw e;
  }
  return privateKey;
}

interface KnownHostEntry {
  key: string;
  fingerprint: string;
  learnedAt: string;
}

/** Upstream host keys learned on first use, keyed by connection name (ssh/known_hosts.json). */
export class KnownHosts {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'ssh', 'known_hosts.json');
  }

  private read(): Record<string, KnownHostEntry> {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, KnownHostEntry>) : {};
    } catch {
      return {};
    }
  }

  get(connection: string): Buffer | null {
    const entry = this.read()[connection];
    return entry && typeof entry.key === 'string' ? parsePinnedKey(entry.key) : null;
  }

  set(connection: string, blob: Buffer): void {
    const all = this.read();
    all[connection] = { key: formatPinnedKey(blob), fingerprint: fingerprint(blob), learnedAt: new Date().toISOString() };
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}
