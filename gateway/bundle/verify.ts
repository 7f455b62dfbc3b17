/**
 * `flightlog verify`: checks a bundle without extracting it. One streaming pass over the tar
 * computes every member's digest, recomputes every hash chain and keeps only the small members
 * in memory; the checks that need the whole picture (signature, seals, manifest) run after it.
 * A bundle is hostile until proven otherwise: every failure is a one-line problem, never a crash.
 */
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import * as path from 'node:path';
import { chainHash, commandDigest, findingDigest, genesisHash, keyFingerprint, sealMessage, verifySeal } from '../store/chain';
import { Coverage } from '../store/coverage';
import { commandFactsOfView, findingFactsOfView } from '../store/rows';
import { FlightlogError } from '../core/errors';
import { BundleError } from './errors';
import {
  BUNDLE_FORMAT,
  DEFAULT_LIMITS,
  MANIFEST,
  PUBLIC_KEY,
  SIGNATURE,
  SUMS,
  classifyMember,
  isSessionId,
  sessionMember,
  type BundleLimits,
  type Manifest,
  type SessionFile,
} from './format';
import { LineArrayParser, eventRowProblem, splitLines } from './lines';
import { TarReader, printable, type TarEntry } from './tar';

export interface TrustedKey {
  name: string;
  /** `SHA256:<base64>` of the SPKI DER, as keyFingerprint() prints it */
  fingerprint: string;
  publicKeyPem: string;
  addedAt?: string;
}

export interface BundleProblem {
  code: string;
  member: string | null;
  session: string | null;
  seq: number | null;
  message: string;
}

export interface VerifyReport {
  file: string;
  /** every checksum, chain, seal and the signature matched */
  ok: boolean;
  /** false when the file could not be read as a bundle at all (nothing in it can be imported) */
  readable: boolean;
  sessions: number;
  events: number;
  signer: { fingerprint: string | null; trusted: boolean; name: string | null };
  /** sessions that were still live at export: covered by the manifest signature, not by a seal */
  unsealed: string[];
  /** sessions recorded before rows were chained: their events are checked, their command and finding members cannot be */
  legacy: string[];
  /** the first problem found, in archive order; null when ok */
  problem: BundleProblem | null;
  problems: BundleProblem[];
  /** the one-line verdict: `verified: …` or `not verified: …` */
  message: string;
}

export interface VerifyOptions {
  trustedKeys: TrustedKey[];
  limits?: Partial<BundleLimits>;
}

interface MemberInfo {
  entry: TarEntry;
  sha256: string;
  /** small members, kept whole */
  data?: Buffer;
}

interface ChainState {
  count: number;
  lastHash: string;
  /** what the chain says about the session's rows */
  coverage: Coverage;
  /** the chain verified to its end (row checks against a broken chain would only repeat its problem) */
  whole: boolean;
}

/** Digests of the command and finding members' rows, checked against the chain once it is read. */
interface RowDigests {
  commands: Array<{ id: number; digest: string; causedBy: number | null; status: string; line: number }>;
  findings: Array<{ id: number; digest: string; line: number }>;
}

const MAX_PROBLEMS = 100;

function problem(code: string, member: string | null, message: string, session: string | null = null, seq: number | null = null): BundleProblem {
  return { code, member, session, seq, message };
}

function describe(p: BundleProblem): string {
  const where = [p.session && `session ${p.session}`, p.seq !== null && `event ${p.seq}`].filter(Boolean).join(', ');
  return `${p.member ? `${printable(p.member)}: ` : ''}${where ? `${where}: ` : ''}${p.message}`;
}

function parseJson(buf: Buffer, member: string): { value?: unknown; problem?: BundleProblem } {
  try {
    return { value: JSON.parse(buf.toString('utf8')) as unknown };
  } catch (err) {
    return { problem: problem('E_BUNDLE_JSON', member, `invalid JSON (${(err as Error).message.split('\n')[0].slice(0, 120)})`) };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Checks the manifest's shape enough that later checks can rely on it; returns a reason if not. */
function manifestShapeProblem(m: unknown, limits: BundleLimits): string | null {
  if (!isObject(m)) return 'not a JSON object';
  if (m.format !== BUNDLE_FORMAT) return `not a Flightlog bundle manifest (format ${JSON.stringify(m.format)?.slice(0, 40)})`;
  if (m.version !== 1) return `bundle format version ${JSON.stringify(m.version)?.slice(0, 20)} is not supported by this Flightlog (it reads version 1)`;
  if (!isObject(m.key) || typeof m.key.fingerprint !== 'string') return 'no key fingerprint';
  if (!Array.isArray(m.members) || !Array.isArray(m.sessions)) return 'no member or session list';
  if (m.sessions.length > limits.maxSessions) return `more than ${limits.maxSessions} sessions`;
  for (const x of m.members) {
    if (!isObject(x) || typeof x.name !== 'string' || !Number.isSafeInteger(x.size) || typeof x.sha256 !== 'string') return 'a malformed member entry';
  }
  for (const s of m.sessions) {
    if (!isObject(s) || typeof s.id !== 'string' || !isSessionId(s.id) || !Number.isSafeInteger(s.events) || typeof s.lastHash !== 'string') return 'a malformed session entry';
    if (s.seal !== null && typeof s.seal !== 'string') return 'a malformed session seal';
  }
  return null;
}

/** Verifies a bundle file; never throws for bad content (the report says what is wrong). */
export async function verifyBundle(file: string, opts: VerifyOptions): Promise<VerifyReport> {
  const limits: BundleLimits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  const report: VerifyReport = {
    file,
    ok: false,
    readable: true,
    sessions: 0,
    events: 0,
    signer: { fingerprint: null, trusted: false, name: null },
    unsealed: [],
    legacy: [],
    problem: null,
    problems: [],
    message: '',
  };
  try {
    await check(file, opts, limits, report);
  } catch (err) {
    // Structural failures end the reading: the file is not a bundle we can read further.
    report.readable = false;
    const p =
      err instanceof FlightlogError
        ? problem(err.code, null, err.message)
        : problem('E_BUNDLE_READ', null, `cannot read the bundle: ${String((err as Error)?.message ?? err).split('\n')[0]}`);
    report.problems.unshift(p);
  }
  report.problem = report.problems[0] ?? null;
  report.ok = report.problem === null;
  if (report.ok) {
    const who = report.signer.trusted ? `trusted: ${report.signer.name}` : 'unknown key';
    const unsealed = report.unsealed.length ? `; ${report.unsealed.length} session${report.unsealed.length === 1 ? ' was' : 's were'} still live at export (covered by the bundle signature, not sealed)` : '';
    const legacy = report.legacy.length ? `; ${report.legacy.length} session${report.legacy.length === 1 ? ' was' : 's were'} recorded before commands and findings were chained (only their events are checked)` : '';
    report.message = `verified: ${report.sessions} session${report.sessions === 1 ? '' : 's'}, ${report.events} events, signed by ${report.signer.fingerprint} (${who})${unsealed}${legacy}`;
  } else {
    report.message = `not verified: ${describe(report.problem!)}`;
  }
  return report;
}

async function check(file: string, opts: VerifyOptions, limits: BundleLimits, report: VerifyReport): Promise<void> {
  const add = (p: BundleProblem): void => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
  };
  const reader = await TarReader.open(file, { maxMembers: limits.maxMembers, maxMemberBytes: limits.maxStreamMemberBytes });
  const members = new Map<string, MemberInfo>();
  const order: string[] = [];
  // problems found while streaming a member, reported with that member in archive order
  const streamProblems = new Map<string, BundleProblem[]>();
  const chains = new Map<string, ChainState>();
  const rowDigests = new Map<string, RowDigests>();
  const digestsOf = (id: string): RowDigests => {
    let d = rowDigests.get(id);
    if (!d) rowDigests.set(id, (d = { commands: [], findings: [] }));
    return d;
  };
  const sessionIds = new Set<string>();
  try {
    for (;;) {
      const entry = await reader.next();
      if (!entry) break;
      const kind = classifyMember(entry.name);
      if (kind.kind === 'bad') throw new BundleError('E_BUNDLE_MEMBER_NAME', `member "${printable(entry.name)}" has ${kind.reason}; refusing the bundle`);
      if (members.has(entry.name)) throw new BundleError('E_BUNDLE_DUPLICATE', `member "${printable(entry.name)}" appears twice`);
      const streamed = kind.kind === 'session' && kind.file !== 'session.json';
      if (!streamed && entry.size > limits.maxJsonMemberBytes) {
        throw new BundleError('E_BUNDLE_SIZE', `member "${printable(entry.name)}" is ${entry.size} bytes, over the ${limits.maxJsonMemberBytes}-byte limit for it`);
      }
      if (kind.kind === 'session') {
        sessionIds.add(kind.id);
        if (sessionIds.size > limits.maxSessions) throw new BundleError('E_BUNDLE_TOO_MANY', `the bundle has more than ${limits.maxSessions} sessions`);
      }
      order.push(entry.name);
      if (!streamed) {
        const data = await reader.readAll(entry);
        members.set(entry.name, { entry, data, sha256: createHash('sha256').update(data).digest('hex') });
        continue;
      }
      const id = (kind as { id: string }).id;
      const f = (kind as { file: SessionFile }).file;
      const hash = createHash('sha256');
      const found: BundleProblem[] = [];
      const chunks = reader.content(entry);
      if (f === 'events.ndjson') {
        const chain = await checkEvents(id, entry.name, splitLines(chunks, limits.maxLineBytes, (b) => hash.update(b)), found);
        chains.set(id, chain);
      } else {
        await checkLineArray(id, entry.name, f, splitLines(chunks, limits.maxLineBytes, (b) => hash.update(b)), found, digestsOf(id));
      }
      if (found.length) streamProblems.set(entry.name, found);
      members.set(entry.name, { entry, sha256: hash.digest('hex') });
    }
  } finally {
    await reader.close();
  }

  for (const required of [MANIFEST, SIGNATURE, PUBLIC_KEY]) {
    if (!members.has(required)) throw new BundleError('E_BUNDLE_MISSING', `the bundle has no ${required}; it is not a Flightlog bundle or it was cut short`);
  }
  const manifestBytes = members.get(MANIFEST)!.data!;
  const parsed = parseJson(manifestBytes, MANIFEST);
  if (parsed.problem) throw new BundleError(parsed.problem.code, `${MANIFEST}: ${parsed.problem.message}`);
  const shape = manifestShapeProblem(parsed.value, limits);
  if (shape) throw new BundleError('E_BUNDLE_MANIFEST', `${MANIFEST}: ${shape}`);
  const manifest = parsed.value as Manifest;
  report.signer.fingerprint = manifest.key.fingerprint;

  // SHA256SUMS, read first so a failed signature can say which of the two files was altered
  const sums = new Map<string, string>();
  const sumsProblems: BundleProblem[] = [];
  const sumsMember = members.get(SUMS);
  if (!sumsMember) add(problem('E_BUNDLE_MISSING', SUMS, 'missing'));
  else {
    const lines = sumsMember.data!.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, i) => {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (!m) sumsProblems.push(problem('E_BUNDLE_SUMS', SUMS, `line ${i + 1} is not a sha256sum line`));
      else sums.set(m[2], m[1]);
    });
    for (const name of order) {
      if (name === SUMS) continue;
      const want = sums.get(name);
      if (want === undefined) sumsProblems.push(problem('E_BUNDLE_SUMS', SUMS, `has no line for ${printable(name)}`));
      else if (want !== members.get(name)!.sha256) sumsProblems.push(problem('E_BUNDLE_SUMS', SUMS, `the line for ${printable(name)} does not match its sha256`));
    }
    for (const name of sums.keys()) if (!members.has(name)) sumsProblems.push(problem('E_BUNDLE_SUMS', SUMS, `lists ${printable(name)}, which is not in the bundle`));
  }

  // 1. the key: a valid Ed25519 key whose fingerprint is the one the manifest names
  const pem = members.get(PUBLIC_KEY)!.data!.toString('utf8');
  let keyOk = false;
  let bundleFingerprint: string | null = null;
  try {
    const k = createPublicKey(pem);
    if (k.asymmetricKeyType !== 'ed25519') add(problem('E_BUNDLE_KEY', PUBLIC_KEY, `is a ${k.asymmetricKeyType} key, not Ed25519`));
    else {
      bundleFingerprint = keyFingerprint(pem);
      if (bundleFingerprint !== manifest.key.fingerprint) add(problem('E_BUNDLE_KEY', PUBLIC_KEY, `its fingerprint ${bundleFingerprint} is not the one ${MANIFEST} names (${printable(manifest.key.fingerprint)})`));
      else keyOk = true;
    }
  } catch {
    add(problem('E_BUNDLE_KEY', PUBLIC_KEY, 'not a valid public key'));
  }
  if (bundleFingerprint) {
    report.signer.fingerprint = bundleFingerprint;
    const t = opts.trustedKeys.find((k) => k.fingerprint === bundleFingerprint);
    if (t) report.signer = { fingerprint: bundleFingerprint, trusted: true, name: t.name };
  }

  // 2. the signature over the exact manifest bytes
  if (keyOk) {
    const sigText = members.get(SIGNATURE)!.data!.toString('ascii').trim();
    let sigOk = false;
    try {
      sigOk = /^[A-Za-z0-9+/]+=*$/.test(sigText) && verifySignature(null, manifestBytes, createPublicKey(pem), Buffer.from(sigText, 'base64'));
    } catch {
      sigOk = false;
    }
    if (!sigOk) {
      const altered = [MANIFEST, SIGNATURE].find((n) => sums.has(n) && sums.get(n) !== members.get(n)!.sha256);
      add(
        altered === MANIFEST
          ? problem('E_BUNDLE_SIGNATURE', MANIFEST, `altered after it was signed: the signature in ${SIGNATURE} does not verify`)
          : altered === SIGNATURE
            ? problem('E_BUNDLE_SIGNATURE', SIGNATURE, `altered: the signature does not verify over ${MANIFEST}`)
            : problem('E_BUNDLE_SIGNATURE', SIGNATURE, `the signature does not verify over ${MANIFEST} with ${PUBLIC_KEY}`),
      );
    }
  }

  // 3. members in archive order: listed, intact, parseable, chains whole
  const listed = new Map(manifest.members.map((m) => [m.name, m]));
  const meta = new Set([MANIFEST, SIGNATURE, SUMS]);
  for (const name of order) {
    const info = members.get(name)!;
    for (const p of streamProblems.get(name) ?? []) add(p);
    if (!meta.has(name)) {
      const want = listed.get(name);
      if (!want) add(problem('E_BUNDLE_UNLISTED', name, `not listed in ${MANIFEST} (added after signing)`));
      else if (want.size !== info.entry.size || want.sha256 !== info.sha256) add(problem('E_BUNDLE_CHECKSUM', name, `its sha256 does not match ${MANIFEST} (altered after signing)`));
    }
  }
  for (const m of manifest.members) if (!members.has(m.name)) add(problem('E_BUNDLE_MISSING', m.name, `listed in ${MANIFEST} but not in the bundle`));

  // 4. sessions: each one whole, its chain ending where the manifest and its seal say
  const inManifest = new Set<string>();
  let events = 0;
  for (const s of manifest.sessions) {
    if (inManifest.has(s.id)) {
      add(problem('E_BUNDLE_MANIFEST', MANIFEST, 'lists the session twice', s.id));
      continue;
    }
    inManifest.add(s.id);
    const sjName = sessionMember(s.id, 'session.json');
    const sj = members.get(sjName);
    for (const f of ['session.json', 'commands.json', 'findings.json', 'events.ndjson'] as const) {
      if (!members.has(sessionMember(s.id, f))) add(problem('E_BUNDLE_MISSING', sessionMember(s.id, f), 'missing', s.id));
    }
    const chain = chains.get(s.id);
    if (chain) {
      events += chain.count;
      if (chain.count !== s.events || chain.lastHash !== s.lastHash) {
        add(problem('E_BUNDLE_CHAIN_END', sessionMember(s.id, 'events.ndjson'), `the chain has ${chain.count} events ending in ${chain.lastHash.slice(0, 12)}…, the manifest says ${s.events} ending in ${String(s.lastHash).slice(0, 12)}… (events dropped or added)`, s.id));
      }
    }
    if (chain?.whole && !chain.coverage.coversRows) report.legacy.push(s.id);
    if (chain?.whole) {
      const p = rowProblem(s.id, chain.coverage, rowDigests.get(s.id) ?? { commands: [], findings: [] }, s.seal !== null);
      if (p) add(p);
    }
    if (s.seal === null) report.unsealed.push(s.id);
    else if (keyOk && !verifySeal(pem, sealMessage(s.id, s.events, s.lastHash), s.seal)) {
      const other = typeof s.sealKey === 'string' && s.sealKey !== bundleFingerprint ? ` (it was sealed by ${printable(s.sealKey)})` : '';
      add(problem('E_BUNDLE_SEAL', sjName, `the seal does not verify with the bundle's key ${bundleFingerprint}${other}: re-signed or swapped in from another bundle`, s.id));
    }
    if (sj?.data) {
      const r = parseJson(sj.data, sjName);
      if (r.problem) add({ ...r.problem, session: s.id });
      else if (!isObject(r.value) || r.value.id !== s.id) add(problem('E_BUNDLE_SESSION', sjName, 'its id is not the session it is filed under', s.id));
      else if (r.value.seal !== s.seal) add(problem('E_BUNDLE_SESSION', sjName, `its seal is not the one ${MANIFEST} lists`, s.id));
    }
  }
  for (const id of sessionIds) if (!inManifest.has(id)) add(problem('E_BUNDLE_UNLISTED', `sessions/${id}/`, `session not listed in ${MANIFEST}`, id));
  for (const name of ['identities.json', 'connections.json', 'runs.json']) {
    const m = members.get(name);
    if (m?.data) {
      const r = parseJson(m.data, name);
      if (r.problem) add(r.problem);
      else if (!Array.isArray(r.value)) add(problem('E_BUNDLE_JSON', name, 'not a JSON array'));
    }
  }
  // SHA256SUMS is unsigned, a convenience for sha256sum -c: the least telling witness, so last
  for (const p of sumsProblems) add(p);
  report.sessions = manifest.sessions.length;
  report.events = events;
}

/** Recomputes one session's chain from its NDJSON lines; notes the first event that does not match. */
async function checkEvents(sessionId: string, member: string, lines: AsyncIterable<string | null>, found: BundleProblem[]): Promise<ChainState> {
  let prev = genesisHash(sessionId);
  let expect = 1;
  let lineNo = 0;
  let failed = false;
  const coverage = new Coverage();
  for await (const line of lines) {
    lineNo++;
    // keep draining after the first problem: the member's digest still needs every byte
    if (failed) continue;
    if (line === null) {
      found.push(problem('E_BUNDLE_LINE', member, `line ${lineNo} is longer than the limit`, sessionId, expect));
      failed = true;
      continue;
    }
    if (line === '') {
      found.push(problem('E_BUNDLE_EVENT', member, `line ${lineNo} is empty`, sessionId, expect));
      failed = true;
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      found.push(problem('E_BUNDLE_JSON', member, `line ${lineNo} is not valid JSON`, sessionId, expect));
      failed = true;
      continue;
    }
    const bad = eventRowProblem(v);
    if (bad) {
      found.push(problem('E_BUNDLE_EVENT', member, `line ${lineNo} is not an event row: ${bad}`, sessionId, expect));
      failed = true;
      continue;
    }
    const e = v as { seq: number; t_us: number; wall: string; kind: string; direction: string; command_id: number | null; data: string; hash: string };
    if (e.seq !== expect) {
      const what = e.seq < expect ? `duplicated or reordered sequence number ${e.seq} (expected ${expect})` : `expected seq ${expect}, found ${e.seq} (an event is missing or reordered)`;
      found.push(problem('E_BUNDLE_SEQ', member, what, sessionId, e.seq));
      failed = true;
      continue;
    }
    const h = chainHash(prev, e);
    if (h !== e.hash) {
      found.push(problem('E_BUNDLE_CHAIN', member, 'the hash does not match the event content (altered, or moved from another session)', sessionId, e.seq));
      failed = true;
      continue;
    }
    prev = h;
    expect++;
    coverage.addEvent(e);
  }
  return { count: expect - 1, lastHash: prev, coverage, whole: !failed };
}

async function checkLineArray(sessionId: string, member: string, file: SessionFile, lines: AsyncIterable<string | null>, found: BundleProblem[], digests: RowDigests): Promise<void> {
  const parser = new LineArrayParser();
  let lineNo = 0;
  let failed = false;
  for await (const line of lines) {
    lineNo++;
    if (failed) continue;
    try {
      if (line === null) throw new Error('longer than the limit');
      const v = parser.feed(line);
      if (v !== undefined && (!isObject(v) || v.sessionId !== sessionId)) throw new Error(`not a ${file === 'commands.json' ? 'command' : 'finding'} of this session`);
      if (v !== undefined && file === 'commands.json') {
        const c = commandFactsOfView(v as Record<string, unknown>);
        digests.commands.push({ id: c.id, digest: commandDigest(c), causedBy: c.caused_by, status: c.status, line: lineNo });
      } else if (v !== undefined) {
        const f = findingFactsOfView(v as Record<string, unknown>);
        digests.findings.push({ id: f.id, digest: findingDigest(f), line: lineNo });
      }
    } catch (err) {
      found.push(problem('E_BUNDLE_JSON', member, `line ${lineNo}: ${(err as Error).message.split('\n')[0].slice(0, 120)}`, sessionId));
      failed = true;
    }
  }
  if (!failed) {
    try {
      parser.end();
    } catch (err) {
      found.push(problem('E_BUNDLE_JSON', member, (err as Error).message, sessionId));
    }
  }
}

/** The first command or finding of a session that its chain does not vouch for. */
function rowProblem(sessionId: string, cov: Coverage, rows: RowDigests, sealed: boolean): BundleProblem | null {
  if (cov.problem) return problem('E_BUNDLE_EVENT', sessionMember(sessionId, 'events.ndjson'), cov.problem.what, sessionId, cov.problem.seq);
  for (const c of rows.commands) {
    const p = cov.command(c.id, c.digest, c.causedBy, c.status, sealed);
    if (p) return problem('E_BUNDLE_ROW', sessionMember(sessionId, 'commands.json'), `line ${c.line}: command ${c.id} ${p.what}`, sessionId);
  }
  for (const f of rows.findings) {
    const p = cov.finding(f.id, f.digest, sealed);
    if (p) return problem('E_BUNDLE_ROW', sessionMember(sessionId, 'findings.json'), `line ${f.line}: finding ${f.id} ${p.what}`, sessionId);
  }
  const gone = cov.missing();
  if (gone) return problem('E_BUNDLE_ROW', sessionMember(sessionId, gone.table === 'commands' ? 'commands.json' : 'findings.json'), `${gone.table === 'commands' ? 'command' : 'finding'} ${gone.id} ${gone.what}`, sessionId);
  return null;
}

export function bundleName(file: string): string {
  return path.basename(file);
}
