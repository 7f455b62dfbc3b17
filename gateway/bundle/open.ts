/**
 * `flightlog open`: verifies bundles and imports them into a fresh in-memory store built with the
 * store's own schema, so the same read queries (listSessions, getSession, search, listEvents)
 * serve imported sessions, from several bundles at once. Rows are parsed from the JSON members;
 * no database file from a bundle is ever opened.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Db } from '../store/db';
import {
  idClashOffset,
  importTx,
  importedCommandWriter,
  importedEventWriter,
  importedFindingWriter,
  insertConnectionIfAbsent,
  insertIdentityIfAbsent,
  insertImportedSession,
  insertRunIfAbsent,
  makeQueryOnly,
  openMemoryDb,
  sessionExists,
} from '../store/bundle-import';
import type { CommandView, FindingView } from '../common/api-types';
import type { Json } from '../common/types';
import { CONNECTIONS, DEFAULT_LIMITS, IDENTITIES, MANIFEST, RUNS, classifyMember, sessionMember, type BundleLimits, type Manifest } from './format';
import { LineArrayParser, eventRowProblem, splitLines, toEventRow } from './lines';
import type { SessionRecord } from './rows';
import { TarReader, type TarEntry } from './tar';
import { verifyBundle, type TrustedKey, type VerifyReport } from './verify';

export { openMemoryDb };

export interface OpenedBundleReport extends VerifyReport {
  /** sessions imported from this bundle */
  imported: string[];
  /** sessions not imported, each with the reason (already open from another bundle, unreadable…) */
  skipped: Array<{ session: string; reason: string }>;
}

export interface OpenBundlesOptions {
  trustedKeys?: TrustedKey[];
  limits?: Partial<BundleLimits>;
}

/** The origin of an imported session, kept in its meta JSON under `bundle`. */
export interface BundleOrigin {
  file: string;
  verified: boolean;
  signer: string | null;
  trusted: boolean;
  trustedAs: string | null;
  /** the verdict line, so a viewer can show why a bundle failed */
  message: string;
}

/**
 * Verifies each bundle and imports it. A bundle that fails verification is still imported when
 * it can be read (marked `verified: false`), so a reviewer can look at what is wrong; one that
 * cannot be read as a bundle at all is reported and skipped. The returned db is query-only.
 */
export async function openBundles(files: string[], opts: OpenBundlesOptions = {}): Promise<{ db: Db; reports: OpenedBundleReport[] }> {
  const limits: BundleLimits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  const db = openMemoryDb();
  const reports: OpenedBundleReport[] = [];
  for (const file of files) {
    const verified = await verifyBundle(file, { trustedKeys: opts.trustedKeys ?? [], limits });
    const report: OpenedBundleReport = { ...verified, imported: [], skipped: [] };
    reports.push(report);
    if (!report.readable) continue;
    try {
      await importBundle(db, file, report, limits);
    } catch (err) {
      report.skipped.push({ session: '*', reason: `cannot import: ${String((err as Error)?.message ?? err).split('\n')[0]}` });
    }
  }
  makeQueryOnly(db);
  return { db, reports };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function int(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
}

function jsonText(v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

async function importBundle(db: Db, file: string, report: OpenedBundleReport, limits: BundleLimits): Promise<void> {
  const reader = await TarReader.open(file, { maxMembers: limits.maxMembers, maxMemberBytes: limits.maxStreamMemberBytes });
  try {
    const entries = new Map<string, TarEntry>();
    for (let e = await reader.next(); e; e = await reader.next()) {
      if (classifyMember(e.name).kind === 'bad' || entries.has(e.name)) throw new Error('the bundle changed since it was verified');
      entries.set(e.name, e);
    }
    const readJson = async (name: string): Promise<unknown> => {
      const e = entries.get(name);
      if (!e || e.size > limits.maxJsonMemberBytes) return undefined;
      try {
        return JSON.parse((await reader.readAll(e)).toString('utf8')) as unknown;
      } catch {
        return undefined;
      }
    };
    const manifest = (await readJson(MANIFEST)) as Manifest | undefined;
    if (!isObject(manifest) || !Array.isArray(manifest.sessions) || !Array.isArray(manifest.members)) throw new Error(`${MANIFEST} is unreadable`);
    const listed = new Map(manifest.members.map((m) => [m.name, m]));
    // Re-read members must be the bytes that were verified (the file could change in between).
    const changed = (name: string, sha256: string): boolean => report.ok && listed.get(name)?.sha256 !== sha256;
    const origin: BundleOrigin = {
      file: path.basename(file),
      verified: report.ok,
      signer: report.signer.fingerprint,
      trusted: report.signer.trusted,
      trustedAs: report.signer.name,
      message: report.message,
    };

    importTx.begin(db);
    try {
      for (const x of asArray(await readJson(IDENTITIES))) {
        if (isObject(x) && str(x.name) && (x.kind === 'agent' || x.kind === 'human')) {
          insertIdentityIfAbsent(db, x.name as string, x.kind as 'agent' | 'human', str(x.createdAt) ?? '', str(x.revokedAt));
        }
      }
      for (const x of asArray(await readJson(CONNECTIONS))) {
        if (isObject(x) && str(x.name) && str(x.protocol)) {
          insertConnectionIfAbsent(
            db,
            x.name as string,
            x.protocol as string,
            JSON.stringify(x.config ?? {}),
            str(x.firstSeen) ?? '',
            str(x.updatedAt) ?? '',
          );
        }
      }
      for (const x of asArray(await readJson(RUNS))) {
        if (isObject(x) && str(x.id) && str(x.startedAt)) {
          insertRunIfAbsent(
            db,
            x.id as string,
            str(x.identity),
            JSON.stringify(x.argv ?? []),
            x.startedAt as string,
            str(x.endedAt),
            int(x.exitCode),
          );
        }
      }
      const offsets = await idOffsets(db, reader, entries, manifest, limits);
      const seen = new Set<string>();
      for (const s of manifest.sessions) {
        if (!isObject(s) || typeof s.id !== 'string' || seen.has(s.id)) continue;
        seen.add(s.id);
        if (sessionExists(db, s.id)) {
          report.skipped.push({ session: s.id, reason: 'already open from another bundle' });
          continue;
        }
        importTx.savepoint(db);
        try {
          await importSession(db, reader, entries, s.id, origin, offsets, limits, changed);
          importTx.release(db);
          report.imported.push(s.id);
        } catch (err) {
          importTx.rollbackToSavepoint(db);
          report.skipped.push({ session: s.id, reason: String((err as Error)?.message ?? err).split('\n')[0] });
        }
      }
      importTx.commit(db);
    } catch (err) {
      importTx.rollback(db);
      throw err;
    }
  } finally {
    await reader.close();
  }
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

interface Offsets {
  command: number;
  finding: number;
  /** command ids present in this bundle, to keep lineage links only inside it */
  commandIds: Set<number>;
}

async function* lineArray(reader: TarReader, e: TarEntry, limits: BundleLimits, onChunk?: (b: Buffer) => void): AsyncGenerator<Record<string, unknown>> {
  const parser = new LineArrayParser();
  let n = 0;
  for await (const line of splitLines(reader.content(e), limits.maxLineBytes, onChunk)) {
    n++;
    if (line === null) throw new Error(`${e.name}: line ${n} is too long`);
    let v: unknown;
    try {
      v = parser.feed(line);
    } catch (err) {
      throw new Error(`${e.name}: line ${n}: ${(err as Error).message.split('\n')[0].slice(0, 120)}`);
    }
    if (v === undefined) continue;
    if (!isObject(v)) throw new Error(`${e.name}: line ${n} is not an object`);
    yield v;
  }
  parser.end();
}

/**
 * Command and finding ids are store-wide integers, so bundles from two gateways collide. A bundle
 * keeps its ids when they are free (one bundle opens exactly as it was recorded); otherwise all of
 * its ids move up past the ones already imported, preserving their order.
 */
async function idOffsets(db: Db, reader: TarReader, entries: Map<string, TarEntry>, manifest: Manifest, limits: BundleLimits): Promise<Offsets> {
  const commandIds = new Set<number>();
  let cMin = Infinity;
  let cMax = -Infinity;
  let fMin = Infinity;
  let fMax = -Infinity;
  for (const s of manifest.sessions) {
    if (!isObject(s) || typeof s.id !== 'string') continue;
    for (const [file, isCommand] of [['commands.json', true], ['findings.json', false]] as const) {
      const e = entries.get(sessionMember(s.id, file));
      if (!e) continue;
      try {
        for await (const v of lineArray(reader, e, limits)) {
          const id = int(v.id);
          if (id === null) continue;
          if (isCommand) {
            commandIds.add(id);
            cMin = Math.min(cMin, id);
            cMax = Math.max(cMax, id);
          } else {
            fMin = Math.min(fMin, id);
            fMax = Math.max(fMax, id);
          }
        }
      } catch {
        // the session's own import reports it
      }
    }
  }
  return { command: idClashOffset(db, 'commands', cMin, cMax), finding: idClashOffset(db, 'findings', fMin, fMax), commandIds };
}

async function importSession(
  db: Db,
  reader: TarReader,
  entries: Map<string, TarEntry>,
  id: string,
  origin: BundleOrigin,
  offsets: Offsets,
  limits: BundleLimits,
  changed: (name: string, sha256: string) => boolean,
): Promise<void> {
  const need = (f: 'session.json' | 'commands.json' | 'findings.json' | 'events.ndjson'): TarEntry => {
    const e = entries.get(sessionMember(id, f));
    if (!e) throw new Error(`${sessionMember(id, f)} is missing`);
    return e;
  };
  const sjEntry = need('session.json');
  if (sjEntry.size > limits.maxJsonMemberBytes) throw new Error('session.json is too large');
  const sjBytes = await reader.readAll(sjEntry);
  if (changed(sjEntry.name, createHash('sha256').update(sjBytes).digest('hex'))) throw new Error('the bundle changed since it was verified');
  let s: SessionRecord;
  try {
    s = JSON.parse(sjBytes.toString('utf8')) as SessionRecord;
  } catch {
    throw new Error('session.json is not valid JSON');
  }
  if (!isObject(s) || s.id !== id) throw new Error('session.json is not this session');
  const meta: { [k: string]: Json } = isObject(s.meta) ? { ...(s.meta as { [k: string]: Json }) } : { value: (s.meta ?? null) as Json };
  meta.bundle = { ...origin };
  const startedAt = str(s.startedAt) ?? '';
  const startedMs = Date.parse(startedAt);
  insertImportedSession(
    db,
    id,
    str(s.identity),
    str(s.connection) ?? '',
    str(s.protocol) ?? '',
    str(s.run),
    str(s.clientAddr),
    JSON.stringify(meta),
    startedAt,
    Number.isFinite(startedMs) ? startedMs * 1000 : 0,
    str(s.endedAt),
    str(s.status) ?? 'closed',
    str(s.endReason),
    int(s.eventCount) ?? 0,
    int(s.commandCount) ?? 0,
    int(s.findingCount) ?? 0,
    str(s.lastHash),
    str(s.seal),
    str(s.sealKey),
  );

  const cmdId = (v: unknown): number | null => {
    const n = int(v);
    return n === null ? null : n + offsets.command;
  };
  const writeCommand = importedCommandWriter(db);
  await streamMember(reader, need('commands.json'), limits, changed, (v) => {
    const c = v as unknown as CommandView;
    if (c.sessionId !== id) throw new Error('commands.json holds a command of another session');
    const targets = Array.isArray(c.targets) ? c.targets.filter((t): t is string => typeof t === 'string') : [];
    const causedBy = int(c.causedBy);
    const newId = cmdId(c.id);
    writeCommand.command(
      newId,
      id,
      int(c.index) ?? 0,
      str(c.kind) ?? '',
      str(c.text) ?? '',
      str(c.classification),
      JSON.stringify(targets),
      str(c.status) ?? '',
      str(c.startedAt) ?? '',
      int(c.startUs) ?? 0,
      int(c.endUs),
      int(c.startSeq),
      int(c.endSeq),
      jsonText(c.detail),
      jsonText(c.result),
      str(c.error),
      causedBy !== null && offsets.commandIds.has(causedBy) ? causedBy + offsets.command : null,
    );
    for (const t of new Set(targets)) writeCommand.target(newId, t.toLowerCase());
  });

  const insertFinding = importedFindingWriter(db);
  await streamMember(reader, need('findings.json'), limits, changed, (v) => {
    const f = v as unknown as FindingView;
    if (f.sessionId !== id) throw new Error('findings.json holds a finding of another session');
    const fid = int(f.id);
    insertFinding(
      fid === null ? null : fid + offsets.finding,
      id,
      cmdId(f.commandId),
      int(f.eventSeq),
      str(f.category) ?? '',
      str(f.kind) ?? '',
      str(f.fp),
      str(f.direction) ?? '',
      f.maskedLive ? 1 : 0,
      jsonText(f.detail),
      str(f.createdAt) ?? '',
    );
  });

  const insertEvent = importedEventWriter(db);
  const ev = need('events.ndjson');
  const hash = createHash('sha256');
  let n = 0;
  for await (const line of splitLines(reader.content(ev), limits.maxLineBytes, (b) => hash.update(b))) {
    n++;
    if (line === null) throw new Error(`events.ndjson: line ${n} is too long`);
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new Error(`events.ndjson: line ${n} is not valid JSON`);
    }
    const bad = eventRowProblem(v);
    if (bad) throw new Error(`events.ndjson: line ${n}: ${bad}`);
    const e = toEventRow(v as Record<string, unknown>);
    insertEvent(id, e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id === null ? null : e.command_id + offsets.command, e.data, e.hash);
  }
  if (changed(ev.name, hash.digest('hex'))) throw new Error('the bundle changed since it was verified');
}

async function streamMember(
  reader: TarReader,
  e: TarEntry,
  limits: BundleLimits,
  changed: (name: string, sha256: string) => boolean,
  row: (v: Record<string, unknown>) => void,
): Promise<void> {
  const hash = createHash('sha256');
  for await (const v of lineArray(reader, e, limits, (b) => hash.update(b))) row(v);
  if (changed(e.name, hash.digest('hex'))) throw new Error('the bundle changed since it was verified');
}
