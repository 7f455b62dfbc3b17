/**
 * `flightlog export`: writes sessions as one signed bundle. Large members (events, commands,
 * findings) are streamed page by page from the store into temp files first, so each tar header
 * knows its size and memory stays flat whatever the session's size.
 */
import { createHash, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Db } from '../store/db';
import { chainHash, commandDigest, findingDigest, genesisHash, keyFingerprint, sealMessage, verifySeal, type GatewayKey } from '../store/chain';
import { Coverage, type CoverageProblem } from '../store/coverage';
import {
  causedCommandIds,
  commandRowsAfter,
  connectionByName,
  eventRowsBetween,
  findingRowsAfter,
  identityByName,
  inReadSnapshot,
  runById,
  runIdExact,
  runIdsByPrefix,
  sessionIdsOfRun,
  sessionRow,
} from '../store/bundle-reads';
import { VERSION } from '../core/version';
import type { Json } from '../common/types';
import { BundleError } from './errors';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  CONNECTIONS,
  IDENTITIES,
  MANIFEST,
  PUBLIC_KEY,
  RUNS,
  SIGNATURE,
  SUMS,
  sessionMember,
  type ConnectionEntry,
  type IdentityEntry,
  type Manifest,
  type ManifestMember,
  type ManifestSession,
  type RunEntry,
} from './format';
import { commandView, findingView, parseJsonText, sanitizeConfig, sessionRecord, type SessionRow } from './rows';
import { TarWriter } from './tar';

export interface ExportOptions {
  sessionIds: string[];
  out: string;
  key: GatewayKey;
  /** events written so far, of the total */
  onProgress?: (done: number, total: number) => void;
}

export interface ExportResult {
  sessions: number;
  events: number;
  bytes: number;
}

const PAGE = 256;

/** A file member being written to a temp file with its digest computed on the way. */
class TempMember {
  private readonly hash = createHash('sha256');
  private buffered: string[] = [];
  private bufferedBytes = 0;
  private closed = false;
  size = 0;

  private constructor(
    readonly name: string,
    readonly file: string,
    private readonly fh: fs.promises.FileHandle,
  ) {}

  static async create(name: string, dir: string, open: TempMember[]): Promise<TempMember> {
    const file = path.join(dir, name.replace(/\//g, '__'));
    const m = new TempMember(name, file, await fs.promises.open(file, 'wx', 0o600));
    open.push(m);
    return m;
  }

  /** After a failure: release the file handle if close() never ran. */
  async dispose(): Promise<void> {
    if (!this.closed) await this.fh.close().catch(() => undefined);
    this.closed = true;
  }

  async write(text: string): Promise<void> {
    this.buffered.push(text);
    this.bufferedBytes += text.length;
    if (this.bufferedBytes >= 1024 * 1024) await this.drain();
  }

  private async drain(): Promise<void> {
    if (this.buffered.length === 0) return;
    const buf = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.bufferedBytes = 0;
    this.hash.update(buf);
    this.size += buf.length;
    let off = 0;
    while (off < buf.length) off += (await this.fh.write(buf, off, buf.length - off)).bytesWritten;
  }

  async close(): Promise<ManifestMember> {
    await this.drain();
    this.closed = true;
    await this.fh.close();
    return { name: this.name, size: this.size, sha256: this.hash.digest('hex') };
  }
}

/** Writes a JSON array one element per line: valid JSON for any tool, streamable for ours. */
class LineArray {
  private first = true;
  constructor(private readonly m: TempMember) {}
  async push(v: unknown): Promise<void> {
    await this.m.write((this.first ? '[\n' : ',\n') + JSON.stringify(v));
    this.first = false;
  }
  async end(): Promise<void> {
    await this.m.write(this.first ? '[]\n' : '\n]\n');
  }
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function jsonBuffer(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, null, 2) + '\n', 'utf8');
}

/** Sessions of a run (for `--run RUN`): exact id or a unique prefix. */
export function sessionsOfRun(db: Db, runIdOrPrefix: string): string[] {
  let runId = runIdExact(db, runIdOrPrefix);
  if (!runId) {
    const escaped = runIdOrPrefix.replace(/[\\%_]/g, (c) => '\\' + c);
    const { viaRuns, viaSessions } = runIdsByPrefix(db, escaped);
    const ids = [...new Set([...viaRuns, ...viaSessions])];
    if (ids.length > 1) throw new BundleError('E_AMBIGUOUS', `run id prefix "${runIdOrPrefix}" matches more than one run`);
    runId = ids[0] ?? null;
  }
  const rows = runId ? sessionIdsOfRun(db, runId) : [];
  if (rows.length === 0) throw new BundleError('E_NOT_FOUND', `no sessions for run "${runIdOrPrefix}"`);
  return rows;
}

/** Writes one signed, self-contained bundle of the given sessions to `out`. */
export async function exportBundle(db: Db, opts: ExportOptions): Promise<ExportResult> {
  // one read snapshot: a live session's commands and the events that cover them are read as of one moment
  return inReadSnapshot(db, () => exportSnapshot(db, opts));
}

function rowsAltered(id: string, p: CoverageProblem): BundleError {
  const row = p.table === 'events' ? `event ${p.id}` : `${p.table === 'commands' ? 'command' : 'finding'} ${p.id}`;
  return new BundleError('E_STORE_ROWS', `session ${id}: ${row} ${p.what}; the store was altered, refusing to export it`);
}

async function exportSnapshot(db: Db, opts: ExportOptions): Promise<ExportResult> {
  const ids = [...new Set(opts.sessionIds)];
  if (ids.length === 0) throw new BundleError('E_NOTHING', 'no sessions to export');
  const rows: SessionRow[] = ids.map((id) => {
    const r = sessionRow(db, id);
    if (!r) throw new BundleError('E_NOT_FOUND', `no session "${id}"`);
    if (r.seal !== null && r.seal_key !== null && r.seal_key !== opts.key.fingerprint) {
      throw new BundleError('E_BUNDLE_KEY', `session ${id} was sealed by key ${r.seal_key}, not this gateway's key ${opts.key.fingerprint}`);
    }
    return r;
  });
  if (keyFingerprint(opts.key.publicKeyPem) !== opts.key.fingerprint) throw new BundleError('E_BUNDLE_KEY', 'the signing key does not match its fingerprint');
  const out = path.resolve(opts.out);
  if (fs.existsSync(out)) throw new BundleError('E_EXISTS', `${opts.out} already exists`);
  const total = rows.reduce((n, r) => n + r.event_count, 0);
  let done = 0;
  opts.onProgress?.(0, total);

  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'flightlog-export-'));
  const partial = `${out}.partial-${process.pid}`;
  let writer: TarWriter | null = null;
  const temps: TempMember[] = [];
  try {
    const streamed: Array<{ member: ManifestMember; file: string }> = [];
    const small: Array<{ name: string; data: Buffer }> = [];
    const manifestSessions: ManifestSession[] = [];

    for (const row of rows) {
      // A live session keeps growing: export the events committed when the export started.
      const upto = row.event_count;
      const events = await TempMember.create(sessionMember(row.id, 'events.ndjson'), tmp, temps);
      let prev = genesisHash(row.id);
      let count = 0;
      const coverage = new Coverage();
      for (let from = 0; from < upto; from += PAGE) {
        const page = eventRowsBetween(db, row.id, from, Math.min(from + PAGE, upto));
        for (const e of page) {
          // The store's chain is checked on the way out: a bundle never carries a chain that cannot verify.
          if (e.seq !== count + 1 || chainHash(prev, e) !== e.hash) {
            throw new BundleError('E_STORE_CHAIN', `session ${row.id}: the stored hash chain does not verify at event ${e.seq}; the store was altered, refusing to export it`);
          }
          prev = e.hash;
          count++;
          coverage.addEvent(e);
          await events.write(JSON.stringify({ seq: e.seq, t_us: e.t_us, wall: e.wall, kind: e.kind, direction: e.direction, command_id: e.command_id, data: e.data, hash: e.hash }) + '\n');
        }
        done += page.length;
        opts.onProgress?.(done, total);
      }
      if (count !== upto) throw new BundleError('E_STORE_CHAIN', `session ${row.id}: the store lists ${upto} events but holds ${count}`);
      const sealed = row.seal !== null && row.last_hash === prev && row.event_count === count;
      if (row.seal !== null && (!sealed || !verifySeal(opts.key.publicKeyPem, sealMessage(row.id, count, prev), row.seal))) {
        throw new BundleError('E_STORE_SEAL', `session ${row.id}: the stored seal does not match its events; the store was altered, refusing to export it`);
      }
      if (coverage.problem) throw rowsAltered(row.id, coverage.problem);

      const commands = await TempMember.create(sessionMember(row.id, 'commands.json'), tmp, temps);
      const commandList = new LineArray(commands);
      const causedOf = causedCommandIds(db);
      let commandCount = 0;
      for (let after = 0; ; ) {
        const page = commandRowsAfter(db, row.id, after, PAGE);
        if (page.length === 0) break;
        for (const c of page) {
          const bad = coverage.command(c.id, commandDigest(c), c.caused_by, c.status, sealed);
          if (bad) throw rowsAltered(row.id, bad);
          const caused = causedOf(c.id);
          await commandList.push(commandView(c, caused));
          commandCount++;
        }
        after = page[page.length - 1].idx;
      }
      await commandList.end();

      const findings = await TempMember.create(sessionMember(row.id, 'findings.json'), tmp, temps);
      const findingList = new LineArray(findings);
      let findingCount = 0;
      for (let after = 0; ; ) {
        const page = findingRowsAfter(db, row.id, after, PAGE);
        if (page.length === 0) break;
        for (const f of page) {
          const bad = coverage.finding(f.id, findingDigest(f), sealed);
          if (bad) throw rowsAltered(row.id, bad);
          await findingList.push(findingView(f));
          findingCount++;
        }
        after = page[page.length - 1].id;
      }
      await findingList.end();
      const gone = coverage.missing();
      if (gone) throw rowsAltered(row.id, gone);

      const record = sessionRecord(row);
      if (!sealed) {
        // the bundle describes the chain it carries, even if the live session has moved on
        record.eventCount = count;
        record.lastHash = count ? prev : null;
      }
      small.push({ name: sessionMember(row.id, 'session.json'), data: jsonBuffer(record) });
      for (const m of [commands, findings, events]) streamed.push({ member: await m.close(), file: m.file });
      manifestSessions.push({
        id: row.id,
        connection: row.connection,
        protocol: row.protocol,
        identity: row.identity,
        run: row.run_id,
        status: row.status,
        events: count,
        commands: commandCount,
        findings: findingCount,
        lastHash: prev,
        seal: sealed ? row.seal : null,
        sealKey: sealed ? row.seal_key : null,
      });
    }

    small.push({ name: IDENTITIES, data: jsonBuffer(identitiesOf(db, rows)) });
    small.push({ name: CONNECTIONS, data: jsonBuffer(connectionsOf(db, rows)) });
    small.push({ name: RUNS, data: jsonBuffer(runsOf(db, rows)) });
    const pem = Buffer.from(opts.key.publicKeyPem.endsWith('\n') ? opts.key.publicKeyPem : opts.key.publicKeyPem + '\n', 'utf8');
    small.push({ name: PUBLIC_KEY, data: pem });

    // Members in the order they are written: small ones first, then each session's streams.
    const contentOrder: Array<{ name: string; data?: Buffer; file?: string; member: ManifestMember }> = [
      ...small.filter((s) => !s.name.startsWith('sessions/')).map((s) => ({ name: s.name, data: s.data, member: { name: s.name, size: s.data.length, sha256: sha256(s.data) } })),
    ];
    for (const ms of manifestSessions) {
      const sj = small.find((s) => s.name === sessionMember(ms.id, 'session.json'))!;
      contentOrder.push({ name: sj.name, data: sj.data, member: { name: sj.name, size: sj.data.length, sha256: sha256(sj.data) } });
      for (const s of streamed.filter((x) => x.member.name.startsWith(`sessions/${ms.id}/`))) contentOrder.push({ name: s.member.name, file: s.file, member: s.member });
    }

    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      created: new Date().toISOString(),
      generator: `flightlog ${VERSION}`,
      key: { algorithm: 'ed25519', fingerprint: opts.key.fingerprint },
      totals: { sessions: manifestSessions.length, events: manifestSessions.reduce((n, s) => n + s.events, 0) },
      sessions: manifestSessions,
      members: contentOrder.map((c) => c.member),
    };
    const manifestBytes = jsonBuffer(manifest);
    const sigBytes = Buffer.from(sign(null, manifestBytes, opts.key.privateKey).toString('base64') + '\n', 'ascii');
    const sums = [
      { name: MANIFEST, sha256: sha256(manifestBytes) },
      { name: SIGNATURE, sha256: sha256(sigBytes) },
      ...contentOrder.map((c) => c.member),
    ]
      .map((m) => `${m.sha256}  ${m.name}\n`)
      .join('');

    writer = await TarWriter.create(partial);
    await writer.addBuffer(MANIFEST, manifestBytes);
    await writer.addBuffer(SIGNATURE, sigBytes);
    await writer.addBuffer(SUMS, Buffer.from(sums, 'utf8'));
    for (const c of contentOrder) {
      if (c.data) await writer.addBuffer(c.name, c.data);
      else await writer.addFile(c.name, c.file!, c.member.size);
    }
    const bytes = await writer.finish();
    writer = null;
    await fs.promises.rename(partial, out);
    return { sessions: manifestSessions.length, events: manifest.totals.events, bytes };
  } catch (err) {
    await writer?.abort();
    await fs.promises.rm(partial, { force: true });
    throw err;
  } finally {
    for (const t of temps) await t.dispose();
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

function identitiesOf(db: Db, rows: SessionRow[]): IdentityEntry[] {
  const names = [...new Set(rows.map((r) => r.identity).filter((n): n is string => n !== null))].sort();
  const out: IdentityEntry[] = [];
  const byName = identityByName(db);
  for (const n of names) {
    const r = byName(n);
    if (r) out.push({ name: r.name, kind: r.kind, createdAt: r.created_at, revokedAt: r.revoked_at });
  }
  return out;
}

function connectionsOf(db: Db, rows: SessionRow[]): ConnectionEntry[] {
  const names = [...new Set(rows.map((r) => r.connection))].sort();
  const out: ConnectionEntry[] = [];
  const byName = connectionByName(db);
  for (const n of names) {
    const r = byName(n);
    if (r) out.push({ name: r.name, protocol: r.protocol, config: sanitizeConfig(parseJsonText(r.config) ?? {}), firstSeen: r.first_seen, updatedAt: r.updated_at });
  }
  return out;
}

function runsOf(db: Db, rows: SessionRow[]): RunEntry[] {
  const ids = [...new Set(rows.map((r) => r.run_id).filter((n): n is string => n !== null))].sort();
  const out: RunEntry[] = [];
  const byId = runById(db);
  for (const id of ids) {
    const r = byId(id);
    if (r) out.push({ id: r.id, identity: r.identity, argv: (parseJsonText(r.argv) ?? []) as Json, startedAt: r.started_at, endedAt: r.ended_at, exitCode: r.exit_code });
  }
  return out;
}
