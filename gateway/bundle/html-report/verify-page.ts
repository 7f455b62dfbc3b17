/**
 * The bundle's verification, in the page with WebCrypto: the same checks and the same first-problem
 * order as `flightlog verify` (gateway/bundle/verify.ts) for what decides a verdict — the key and
 * its fingerprint, the Ed25519 signature over manifest.json's exact bytes, every member's SHA-256
 * against the signed manifest, every session's hash chain recomputed event by event, and each
 * session's seal. Commands and findings are vouched for by their members' digests in the signed
 * manifest; the row digests inside the chain are left to `flightlog verify`.
 */
import type { EmbeddedMember } from './members';

export interface PageProblem {
  member: string | null;
  session: string | null;
  seq: number | null;
  message: string;
}

export interface PageVerdict {
  ok: boolean;
  fingerprint: string | null;
  sessions: number;
  events: number;
  unsealed: string[];
  problem: PageProblem | null;
  /** the one line shown: `verified, signed by SHA256:…` or `not verified: …` */
  message: string;
}

interface ManifestLike {
  format: string;
  version: number;
  key: { fingerprint: string };
  members: Array<{ name: string; size: number; sha256: string }>;
  sessions: Array<{ id: string; events: number; lastHash: string; seal: string | null }>;
}

const enc = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

function b64(buf: ArrayBuffer): string {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function sha256(data: Uint8Array<ArrayBuffer> | string): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', typeof data === 'string' ? enc.encode(data) : data);
}

function bytesOf(m: EmbeddedMember): Uint8Array<ArrayBuffer> {
  return new Uint8Array(m.bytes);
}

/** SPKI DER of a PEM public key, or null when it is not one. */
function pemToDer(pem: string): Uint8Array<ArrayBuffer> | null {
  const m = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) return null;
  try {
    return unb64(m[1].replace(/\s+/g, ''));
  } catch {
    return null;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function manifestShape(m: unknown): string | null {
  if (!isObject(m)) return 'not a JSON object';
  if (m.format !== 'flightlog-bundle') return 'not a Flightlog bundle manifest';
  if (m.version !== 1) return `bundle format version ${JSON.stringify(m.version)} is not supported (this report reads version 1)`;
  if (!isObject(m.key) || typeof m.key.fingerprint !== 'string') return 'no key fingerprint';
  if (!Array.isArray(m.members) || !Array.isArray(m.sessions)) return 'no member or session list';
  for (const x of m.members) if (!isObject(x) || typeof x.name !== 'string' || typeof x.size !== 'number' || typeof x.sha256 !== 'string') return 'a malformed member entry';
  for (const s of m.sessions) if (!isObject(s) || typeof s.id !== 'string' || typeof s.events !== 'number' || typeof s.lastHash !== 'string') return 'a malformed session entry';
  return null;
}

function describe(p: PageProblem): string {
  const where = [p.session && `session ${p.session}`, p.seq !== null && `event ${p.seq}`].filter(Boolean).join(', ');
  return `${p.member ? `${p.member}: ` : ''}${where ? `${where}: ` : ''}${p.message}`;
}

/** The fields an event's hash covers, in the order the store's canonicalEvent() writes them. */
function canonicalEvent(e: Record<string, unknown>): string {
  return JSON.stringify([e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data]);
}

function eventShape(v: unknown): string | null {
  if (!isObject(v)) return 'not a JSON object';
  if (!Number.isSafeInteger(v.seq) || !Number.isSafeInteger(v.t_us)) return 'seq and t_us must be integers';
  if (typeof v.wall !== 'string' || typeof v.kind !== 'string' || typeof v.direction !== 'string' || typeof v.data !== 'string' || typeof v.hash !== 'string') return 'a field has the wrong type';
  if (v.command_id !== null && !Number.isSafeInteger(v.command_id)) return 'command_id must be an integer or null';
  return null;
}

interface Chain {
  count: number;
  lastHash: string;
  problem: PageProblem | null;
}

async function checkChain(sessionId: string, member: string, text: string): Promise<Chain> {
  let prev = hex(await sha256(`flightlog-session:v1\n${sessionId}`));
  let expect = 1;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const bad = (seq: number, message: string): Chain => ({ count: expect - 1, lastHash: prev, problem: { member, session: sessionId, seq, message } });
  for (let i = 0; i < lines.length; i++) {
    let v: unknown;
    try {
      v = JSON.parse(lines[i]);
    } catch {
      return bad(expect, `line ${i + 1} is not valid JSON`);
    }
    const shape = eventShape(v);
    if (shape) return bad(expect, `line ${i + 1} is not an event row: ${shape}`);
    const e = v as Record<string, unknown> & { seq: number; hash: string };
    if (e.seq !== expect) return bad(e.seq, `expected seq ${expect}, found ${e.seq} (an event is missing or reordered)`);
    const h = hex(await sha256(`${prev}\n${canonicalEvent(e)}`));
    if (h !== e.hash) return bad(e.seq, 'the hash does not match the event content (altered, or moved from another session)');
    prev = h;
    expect++;
  }
  return { count: expect - 1, lastHash: prev, problem: null };
}

/** Verifies the embedded members; never throws for bad content (the verdict says what is wrong). */
export async function verifyEmbedded(members: EmbeddedMember[]): Promise<PageVerdict> {
  const verdict: PageVerdict = { ok: false, fingerprint: null, sessions: 0, events: 0, unsealed: [], problem: null, message: '' };
  const problems: PageProblem[] = [];
  const add = (member: string | null, message: string, session: string | null = null, seq: number | null = null): void => {
    problems.push({ member, session, seq, message });
  };
  try {
    await check(members, verdict, problems, add);
  } catch (err) {
    problems.unshift({ member: null, session: null, seq: null, message: `cannot verify in this browser: ${String((err as Error)?.message ?? err)}` });
  }
  verdict.problem = problems[0] ?? null;
  verdict.ok = verdict.problem === null;
  const unsealed = verdict.unsealed.length ? `; ${verdict.unsealed.length} session${verdict.unsealed.length === 1 ? ' was' : 's were'} still live at export (covered by the bundle signature, not sealed)` : '';
  verdict.message = verdict.ok
    ? `verified, signed by ${verdict.fingerprint}: ${verdict.sessions} session${verdict.sessions === 1 ? '' : 's'}, ${verdict.events} events${unsealed}`
    : `not verified: ${describe(verdict.problem!)}`;
  return verdict;
}

type Add = (member: string | null, message: string, session?: string | null, seq?: number | null) => void;

const UNSUPPORTED = 'this browser has no WebCrypto Ed25519 (Chrome 137+, Firefox 129+, Safari 17+ have it); run flightlog verify on the bundle instead';

async function check(members: EmbeddedMember[], verdict: PageVerdict, problems: PageProblem[], add: Add): Promise<void> {
  if (!globalThis.crypto?.subtle) throw new Error(UNSUPPORTED);
  const byName = new Map(members.map((m) => [m.name, m]));
  for (const required of ['manifest.json', 'manifest.sig', 'public-key.pem']) {
    if (!byName.has(required)) {
      add(null, `the report has no ${required}; it was cut short or edited`);
      return;
    }
  }
  const manifestMember = byName.get('manifest.json')!;
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestMember.text);
  } catch {
    add('manifest.json', 'invalid JSON');
    return;
  }
  const shape = manifestShape(parsed);
  if (shape) {
    add('manifest.json', shape);
    return;
  }
  const manifest = parsed as ManifestLike;
  verdict.fingerprint = manifest.key.fingerprint;

  // SHA256SUMS is unsigned; like the CLI, its problems are reported last
  const sums = new Map<string, string>();
  const sumsProblems: string[] = [];
  const sumsMember = byName.get('SHA256SUMS');
  if (sumsMember) {
    for (const line of sumsMember.text.split('\n')) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (m) sums.set(m[2], m[1]);
      else if (line !== '') sumsProblems.push('a line is not a sha256sum line');
    }
  } else sumsProblems.push('missing');
  const digests = new Map<string, string>();
  for (const m of members) digests.set(m.name, hex(await sha256(bytesOf(m))));
  for (const m of members) {
    if (m.name === 'SHA256SUMS') continue;
    if (sumsMember && sums.get(m.name) !== digests.get(m.name)) sumsProblems.push(`the line for ${m.name} does not match its sha256`);
  }

  // 1. the key and its fingerprint (SHA-256 of the SPKI DER, as `flightlog verify` prints it)
  const der = pemToDer(byName.get('public-key.pem')!.text);
  let key: CryptoKey | null = null;
  if (!der) add('public-key.pem', 'not a valid public key');
  else {
    const fp = 'SHA256:' + b64(await sha256(der)).replace(/=+$/, '');
    try {
      key = await crypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify']);
    } catch (err) {
      // an older browser without Ed25519 must not blame the bundle
      if ((err as Error)?.name === 'NotSupportedError') throw new Error(UNSUPPORTED);
      add('public-key.pem', 'not an Ed25519 public key');
    }
    if (key && fp !== manifest.key.fingerprint) {
      add('public-key.pem', `its fingerprint ${fp} is not the one manifest.json names (${manifest.key.fingerprint})`);
      key = null;
    }
    if (key) verdict.fingerprint = fp;
  }

  // 2. the signature over the exact manifest bytes
  if (key) {
    const sigText = byName.get('manifest.sig')!.text.trim();
    let ok = false;
    try {
      ok = /^[A-Za-z0-9+/]+=*$/.test(sigText) && (await crypto.subtle.verify({ name: 'Ed25519' }, key, unb64(sigText), bytesOf(manifestMember)));
    } catch {
      ok = false;
    }
    if (!ok) {
      const altered = ['manifest.json', 'manifest.sig'].find((n) => sums.has(n) && sums.get(n) !== digests.get(n));
      if (altered === 'manifest.json') add('manifest.json', 'altered after it was signed: the signature in manifest.sig does not verify');
      else add('manifest.sig', 'the signature does not verify over manifest.json with public-key.pem');
    }
  }

  // 3. members in archive order: chains first (they name the event), then digests
  const listed = new Map(manifest.members.map((m) => [m.name, m]));
  const chains = new Map<string, Chain>();
  const meta = new Set(['manifest.json', 'manifest.sig', 'SHA256SUMS']);
  for (const m of members) {
    const ev = /^sessions\/([A-Za-z0-9_-]+)\/events\.ndjson$/.exec(m.name);
    if (ev) {
      const chain = await checkChain(ev[1], m.name, m.text);
      chains.set(ev[1], chain);
      if (chain.problem) problems.push(chain.problem);
    }
    if (meta.has(m.name)) continue;
    const want = listed.get(m.name);
    if (!want) add(m.name, 'not listed in manifest.json (added after signing)');
    else if (want.size !== m.bytes.length || want.sha256 !== digests.get(m.name)) add(m.name, 'its sha256 does not match manifest.json (altered after signing)');
  }
  for (const m of manifest.members) if (!byName.has(m.name)) add(m.name, 'listed in manifest.json but not in the report');

  // 4. sessions: each chain ends where the manifest and its seal say
  let events = 0;
  for (const s of manifest.sessions) {
    const member = `sessions/${s.id}/events.ndjson`;
    const chain = chains.get(s.id);
    if (!chain) add(member, 'missing', s.id);
    else {
      events += chain.count;
      if (!chain.problem && (chain.count !== s.events || chain.lastHash !== s.lastHash)) add(member, `the chain has ${chain.count} events, the manifest says ${s.events} (events dropped or added)`, s.id);
    }
    if (s.seal === null) verdict.unsealed.push(s.id);
    else if (key) {
      let ok = false;
      try {
        ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, unb64(s.seal), enc.encode(`flightlog-seal:v1\n${s.id}\n${s.events}\n${s.lastHash}`));
      } catch {
        ok = false;
      }
      if (!ok) add(`sessions/${s.id}/session.json`, `the seal does not verify with the bundle's key ${verdict.fingerprint}: re-signed or swapped in from another bundle`, s.id);
    }
  }
  for (const p of sumsProblems) add('SHA256SUMS', p);
  verdict.sessions = manifest.sessions.length;
  verdict.events = events;
}
