/**
 * The bundle format: member names, the manifest, and the limits a reader enforces.
 *
 * A bundle is a ustar file (`tar tf` lists it) of JSON/NDJSON members:
 *   manifest.json          format, creation time, key fingerprint, every other member's size and
 *                          sha256, and each session's event count, last hash and seal
 *   manifest.sig           base64 Ed25519 signature over the exact bytes of manifest.json
 *   public-key.pem         the gateway's public key (SPKI PEM)
 *   SHA256SUMS             `sha256sum -c` lines over every member but itself
 *   identities.json        names and kinds only (no token hashes)
 *   connections.json       the connection configs: secret references, never values
 *   runs.json              the agent runs the sessions belong to
 *   sessions/<id>/session.json    the session as `flightlog show --json` prints it, without its
 *                                 commands and findings (they have their own members)
 *   sessions/<id>/commands.json   a JSON array, one command per line
 *   sessions/<id>/findings.json   a JSON array, one finding per line
 *   sessions/<id>/events.ndjson   the stored event rows in chain order, one per line
 */
import type { Json } from '../common/types';

export const BUNDLE_FORMAT = 'flightlog-bundle';
export const BUNDLE_VERSION = 1;

export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';
export const PUBLIC_KEY = 'public-key.pem';
export const SUMS = 'SHA256SUMS';
export const IDENTITIES = 'identities.json';
export const CONNECTIONS = 'connections.json';
export const RUNS = 'runs.json';

export const SESSION_FILES = ['session.json', 'commands.json', 'findings.json', 'events.ndjson'] as const;
export type SessionFile = (typeof SESSION_FILES)[number];

const SESSION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const TOP_LEVEL = new Set([MANIFEST, SIGNATURE, PUBLIC_KEY, SUMS, IDENTITIES, CONNECTIONS, RUNS]);

export function sessionMember(id: string, file: SessionFile): string {
  return `sessions/${id}/${file}`;
}

export function isSessionId(id: string): boolean {
  return SESSION_ID_RE.test(id);
}

/**
 * Classifies a member name from a hostile archive. Only the names this format defines are
 * accepted, which rules out traversal (`..`), absolute paths and anything else by construction;
 * the reason is still named so the error says what was wrong.
 */
export function classifyMember(name: string): { kind: 'top'; name: string } | { kind: 'session'; id: string; file: SessionFile } | { kind: 'bad'; reason: string } {
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) return { kind: 'bad', reason: 'an absolute path' };
  if (name.split(/[\\/]/).some((p) => p === '..')) return { kind: 'bad', reason: 'a path that leaves the bundle (..)' };
  if (/[\0-\x1f\x7f\\]/.test(name)) return { kind: 'bad', reason: 'a name with control characters or backslashes' };
  if (TOP_LEVEL.has(name)) return { kind: 'top', name };
  const m = /^sessions\/([^/]+)\/([^/]+)$/.exec(name);
  if (m && SESSION_ID_RE.test(m[1]) && (SESSION_FILES as readonly string[]).includes(m[2])) return { kind: 'session', id: m[1], file: m[2] as SessionFile };
  return { kind: 'bad', reason: 'a name this bundle format does not define' };
}

export interface ManifestMember {
  name: string;
  size: number;
  sha256: string;
}

export interface ManifestSession {
  id: string;
  connection: string;
  protocol: string;
  identity: string | null;
  run: string | null;
  status: string;
  /** events in the bundle (the chain length) */
  events: number;
  commands: number;
  findings: number;
  lastHash: string;
  /** base64 Ed25519 signature over sealMessage(id, events, lastHash); null for a session still live at export */
  seal: string | null;
  sealKey: string | null;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  version: number;
  created: string;
  generator: string;
  key: { algorithm: 'ed25519'; fingerprint: string };
  totals: { sessions: number; events: number };
  sessions: ManifestSession[];
  /** every member except manifest.json, manifest.sig and SHA256SUMS */
  members: ManifestMember[];
}

/** One stored event row, exactly as the hash chain covers it. */
export type { EventRow as RawEventRow } from '../store/rows';

export interface IdentityEntry {
  name: string;
  kind: 'agent' | 'human';
  createdAt: string;
  revokedAt: string | null;
}

export interface ConnectionEntry {
  name: string;
  protocol: string;
  config: Json;
  firstSeen: string;
  updatedAt: string;
}

export interface RunEntry {
  id: string;
  identity: string | null;
  argv: Json;
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
}

export interface BundleLimits {
  maxMembers: number;
  /** events.ndjson, commands.json, findings.json: read as streams */
  maxStreamMemberBytes: number;
  /** members parsed whole (manifest, session.json, identities…) */
  maxJsonMemberBytes: number;
  /** one line of an NDJSON or line-per-element member */
  maxLineBytes: number;
  maxSessions: number;
}

export const DEFAULT_LIMITS: BundleLimits = {
  maxMembers: 200_000,
  maxStreamMemberBytes: 64 * 1024 ** 3,
  maxJsonMemberBytes: 64 * 1024 ** 2,
  maxLineBytes: 128 * 1024 ** 2,
  maxSessions: 40_000,
};
