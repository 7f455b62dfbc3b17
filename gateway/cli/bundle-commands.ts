/**
 * CLI glue for bundles: `flightlog export`, `flightlog verify`, `flightlog trust`. Each returns
 * its exit code and reports bad input as one line on stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { FlightlogError, UsageError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { openDb, storePath } from '../store/db';
import { ensureGatewayKey } from '../store/chain';
import { resolveSessionId } from '../store/queries';
import { checkStore, type StoreIntegrity } from '../store/integrity';
import { exportBundle, sessionsOfRun } from '../bundle/export';
import { exportAsciicast } from '../bundle/asciicast';
import { exportHar } from '../bundle/har';
import { exportJsonl } from '../bundle/jsonl';
import { exportHtmlReport } from '../bundle/html-report';
import { verifyBundle, type TrustedKey } from '../bundle/verify';
import { addTrustedKey, loadTrustedKeys, ownGatewayKey, removeTrustedKey } from '../bundle/trust-store';
import { progressBar, type ProgressStream } from '../bundle/progress';
import { humanBytes } from '../bundle/tar';
import { HelpRequested, parse as parseArgsStrict, reportError, type Io } from './main';

export const EXPORT_USAGE = 'flightlog export SESSION… [--run RUN] -o FILE [--format bundle|asciicast|har|jsonl|html] [--force] [--data-dir DIR]';
export const VERIFY_USAGE = 'flightlog verify [FILE | --store] [--require-trusted] [--json] [--data-dir DIR]';
export const TRUST_USAGE = 'flightlog trust add KEYFILE [--name NAME] | trust list [--json] | trust remove NAME [--data-dir DIR]';

type Flags = Record<string, string | boolean | string[] | undefined>;

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>, usage: string): { flags: Flags; positionals: string[] } {
  return parseArgsStrict(argv, options, Infinity, usage);
}

async function run(io: Io, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout.write(`usage: ${err.message}\n`);
      return 0;
    }
    return reportError(err, io);
  }
}

const FORMATS = ['bundle', 'asciicast', 'har', 'jsonl', 'html'] as const;
type Format = (typeof FORMATS)[number];

function formatFor(flag: string | undefined, out: string): Format {
  if (flag !== undefined) {
    if (!(FORMATS as readonly string[]).includes(flag)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${flag}"`);
    return flag as Format;
  }
  const ext = path.extname(out).toLowerCase();
  return ext === '.cast' ? 'asciicast' : ext === '.har' ? 'har' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : ext === '.html' || ext === '.htm' ? 'html' : 'bundle';
}

/** `flightlog export SESSION… [--run RUN] -o FILE [--format …]` */
export function runExportCommand(argv: string[], io: Io): Promise<number> {
  return run(io, async () => {
    const { flags, positionals } = parse(
      argv,
      { output: { type: 'string', short: 'o' }, run: { type: 'string', multiple: true }, format: { type: 'string' }, force: { type: 'boolean' } },
      EXPORT_USAGE,
    );
    const runs = (flags.run as string[] | undefined) ?? [];
    if (positionals.length === 0 && runs.length === 0) throw new UsageError(`export needs at least one SESSION or --run RUN (usage: ${EXPORT_USAGE})`);
    const out = flags.output as string | undefined;
    if (!out) throw new UsageError(`export needs -o FILE (usage: ${EXPORT_USAGE})`);
    const format = formatFor(flags.format as string | undefined, out);
    const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
    if (!fs.existsSync(storePath(dataDir))) throw new FlightlogError('E_NO_STORE', `no Flightlog store in ${dataDir} (start the gateway once, or pass --data-dir)`);
    const db = openDb(dataDir, { readonly: true });
    try {
      const ids = [...new Set([...positionals.map((p) => resolveSessionId(db, p)), ...runs.flatMap((r) => sessionsOfRun(db, r))])];
      if (fs.existsSync(out)) {
        if (!flags.force) throw new FlightlogError('E_EXISTS', `${out} already exists (pass --force to replace it)`);
        fs.rmSync(out, { force: true });
      }
      switch (format) {
        case 'bundle': {
          const key = ensureGatewayKey(dataDir);
          const bar = progressBar(io.stderr as unknown as ProgressStream, 'exporting');
          let r;
          try {
            r = await exportBundle(db, { sessionIds: ids, out, key, onProgress: bar.update });
          } finally {
            bar.end();
          }
          io.stdout.write(`exported ${r.sessions} session${r.sessions === 1 ? '' : 's'}, ${r.events} events to ${out} (${humanBytes(r.bytes)}), signed by ${key.fingerprint}\n`);
          return 0;
        }
        case 'asciicast': {
          if (ids.length !== 1) throw new UsageError('--format asciicast takes exactly one session');
          const r = await exportAsciicast(db, ids[0], out);
          io.stdout.write(`exported ${r.events} terminal events to ${out} (asciicast v2, ${humanBytes(r.bytes)})\n`);
          return 0;
        }
        case 'har': {
          const r = await exportHar(db, ids, out);
          io.stdout.write(`exported ${r.entries} HTTP exchanges to ${out} (HAR 1.2, ${humanBytes(r.bytes)})\n`);
          return 0;
        }
        case 'jsonl': {
          const r = await exportJsonl(db, ids, out);
          io.stdout.write(`exported ${r.events} events to ${out} (JSON Lines, ${humanBytes(r.bytes)})\n`);
          return 0;
        }
        case 'html': {
          const key = ensureGatewayKey(dataDir);
          const bar = progressBar(io.stderr as unknown as ProgressStream, 'exporting');
          let r;
          try {
            r = await exportHtmlReport(db, { sessionIds: ids, out, key, onProgress: bar.update });
          } finally {
            bar.end();
          }
          io.stdout.write(`exported ${r.sessions} session${r.sessions === 1 ? '' : 's'}, ${r.events} events to ${out} (HTML report, ${humanBytes(r.bytes)}; open it in a browser, it verifies itself), signed by ${key.fingerprint}\n`);
          return 0;
        }
      }
    } finally {
      db.close();
    }
  });
}

/** The keys a verification trusts: the user's trust store plus this machine's own gateway key. */
export function trustedKeysFor(dataDir: string): TrustedKey[] {
  const keys = loadTrustedKeys(dataDir);
  const own = ownGatewayKey(dataDir);
  if (own && !keys.some((k) => k.fingerprint === own.fingerprint)) keys.push(own);
  return keys;
}

/** `flightlog verify FILE`: exit 0 when verified, 1 when not. */
export function runVerifyCommand(argv: string[], io: Io): Promise<number> {
  return run(io, async () => {
    const { flags, positionals } = parse(argv, { 'require-trusted': { type: 'boolean' }, json: { type: 'boolean' }, store: { type: 'boolean' } }, VERIFY_USAGE);
    if (positionals.length > 1 || (flags.store && positionals.length)) throw new UsageError(`verify takes one FILE, or --store (or nothing) for the live store (usage: ${VERIFY_USAGE})`);
    const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
    if (positionals.length === 0) return verifyStore(dataDir, flags.json === true, io);
    const file = positionals[0];
    if (!fs.existsSync(file)) throw new FlightlogError('E_FILE', `no such file: ${file}`);
    const report = await verifyBundle(file, { trustedKeys: trustedKeysFor(dataDir) });
    const untrusted = report.ok && flags['require-trusted'] && !report.signer.trusted;
    if (flags.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else io.stdout.write(report.message + '\n');
    if (untrusted) io.stderr.write(`flightlog: the signing key ${report.signer.fingerprint} is not trusted (flightlog trust add KEYFILE)\n`);
    return report.ok && !untrusted ? 0 : 1;
  });
}

/** `flightlog verify` with no FILE: every session's chain, seal and rows, and every tombstone. */
function verifyStore(dataDir: string, asJson: boolean, io: Io): number {
  if (!fs.existsSync(storePath(dataDir))) throw new FlightlogError('E_NO_STORE', `no Flightlog store in ${dataDir} (start the gateway once, or pass --data-dir)`);
  const key = ownGatewayKey(dataDir);
  if (!key) throw new FlightlogError('E_NO_KEY', `no gateway key in ${dataDir} (gateway-key.pub.pem): nothing to verify seals with`);
  const db = openDb(dataDir, { readonly: true });
  let report: StoreIntegrity;
  try {
    report = checkStore(db, key);
  } finally {
    db.close();
  }
  if (asJson) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    for (const s of report.sessions) io.stdout.write(`${s.session}  ${s.message}\n`);
    for (const t of report.tombstones) io.stdout.write(`${t.sessionId}  ${t.connection}  ${t.message}\n`);
    io.stdout.write(report.message + '\n');
  }
  return report.ok ? 0 : 1;
}

/** `flightlog trust add KEYFILE [--name NAME]`, `trust list`, `trust remove NAME`. */
export function runTrustCommand(argv: string[], io: Io): Promise<number> {
  return run(io, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'add': {
        const { flags, positionals } = parse(rest, { name: { type: 'string' } }, TRUST_USAGE);
        if (positionals.length !== 1) throw new UsageError(`trust add takes one KEYFILE (usage: ${TRUST_USAGE})`);
        const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
        const k = addTrustedKey(dataDir, positionals[0], flags.name as string | undefined);
        io.stdout.write(`trusted ${k.fingerprint} as "${k.name}"\n`);
        return 0;
      }
      case 'list': {
        const { flags, positionals } = parse(rest, { json: { type: 'boolean' } }, TRUST_USAGE);
        if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (usage: ${TRUST_USAGE})`);
        const keys = loadTrustedKeys(resolveDataDir(flags['data-dir'] as string | undefined, io.env));
        if (flags.json) io.stdout.write(JSON.stringify(keys.map(({ name, fingerprint, addedAt }) => ({ name, fingerprint, addedAt: addedAt ?? null })), null, 2) + '\n');
        else if (keys.length === 0) io.stdout.write('no trusted keys (flightlog trust add KEYFILE)\n');
        else {
          const w = Math.max(4, ...keys.map((k) => k.name.length));
          for (const k of keys) io.stdout.write(`${k.name.padEnd(w)}  ${k.fingerprint}  ${k.addedAt ?? ''}\n`);
        }
        return 0;
      }
      case 'remove': {
        const { flags, positionals } = parse(rest, {}, TRUST_USAGE);
        if (positionals.length !== 1) throw new UsageError(`trust remove takes one NAME (usage: ${TRUST_USAGE})`);
        const k = removeTrustedKey(resolveDataDir(flags['data-dir'] as string | undefined, io.env), positionals[0]);
        io.stdout.write(`no longer trusted: ${k.name} (${k.fingerprint})\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown trust command "${sub ?? ''}" (expected add, list or remove; usage: ${TRUST_USAGE})`);
    }
  });
}
