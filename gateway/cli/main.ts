import { VERSION } from '../core/version';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlightlogError, UsageError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { openDb, type Db } from '../store/db';
import { addIdentity, addIdentityKey, listIdentities, revokeIdentity } from '../store/identities';
import { getSession, listFindings, listRuns, listSessions, search } from '../store/queries';
import { loadConfig, validateConfig } from '../config/load';
import { ensureFingerprintKey } from '../store/chain';
import type { FlightlogConfig } from '../common/config-schema';
import { formatSessionDetail, formatSessions, formatSearch, formatFindings, formatIdentities, formatTombstones } from './format';
import { checkSession, dataDirKey, listTombstones } from '../store/integrity';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

const USAGE = `usage: flightlog <command> [options]

  gateway [--config FILE] [--data-dir DIR]   run the gateway headless
  ui [--config FILE] [--data-dir DIR]        the gateway plus the web UI; prints the URL to open
  start [--config FILE] [--data-dir DIR]     the desktop app (falls back to the web UI without Electron)
  identity add NAME --kind agent|human       create an identity; prints its token once
  identity add-key NAME PUBKEYFILE           register an SSH public key for an identity
  identity list [--json]                     list identities
  identity revoke NAME                       revoke an identity and its tokens
  sessions [--json] [--limit N]              list recorded sessions, newest first
  show SESSION [--json]                      one session with its commands and findings
  show --run RUN [--json]                    one run's timeline across its sessions: prompts, tool calls, commands, findings
  search TEXT [--json]                       full-text search over commands
  findings [--json]                          secret sightings and guardrail decisions
  runs [--json]                              agent runs with their sessions
  run [--identity NAME] -- CMD …             start an agent with its traffic routed through the gateway
  export SESSION… [--run RUN] -o FILE        a signed bundle (or --format asciicast|har|jsonl|html)
  verify FILE                                check a bundle's checksums, hash chains, seals, signature
  verify [--store] [--json]                  check the live store: chains, seals, commands, findings, tombstones
  gc [--dry-run] [--json] [--config FILE]    remove sessions past their connection's retention (signed tombstones kept)
  trust add KEYFILE [--name NAME] | list     gateway keys whose bundles you trust
  open FILE…                                 open bundles read-only in the web UI (prints the URL)
  secret add NAME [--store]                  register a secret to mask by value (value on stdin); --store also keeps it for the gateway (prints its { file: … })
  secret list [--json]                       registered secrets (names only)
  mask [FILE]                                mask a file or stdin to stdout; findings summary on stderr
  policy test [--config FILE] [--since 7d]   what each guardrail would have denied or held in recorded history
  pending [--json]                           commands a guardrail holds for a human (running gateway)
  approve ID [--reason TEXT] [--for-run]     let a held command run (--for-run: its rule too, for the rest of the run)
  deny ID [--reason TEXT]                    refuse a held command
  mcp --connection NAME [--identity NAME]    the stdio pipe an agent's MCP config runs instead of the server
  mcp config NAME [--agent claude|cursor|vscode]  the MCP config snippet for an agent
  blame TARGET [--json] [--since TIME]       every command that touched a table, file, HTTP path or k8s object

Every command takes --data-dir DIR (else $FLIGHTLOG_HOME, else the platform's data dir).`;

type Flags = Record<string, string | boolean | undefined>;

/** Parses one command's flags strictly: an unknown flag is a usage error naming the usage line. */
export function parse(argv: string[], options: ParseArgsConfig['options'], maxPositionals: number, usage: string): { flags: Flags; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    throw new UsageError(`${msg} (usage: ${usage})`);
  }
  if (parsed.values.help) throw new HelpRequested(usage);
  if (parsed.positionals.length > maxPositionals) throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}" (usage: ${usage})`);
  return { flags: parsed.values as Flags, positionals: parsed.positionals };
}

/** `--help` on a command: the caller prints the usage and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super(usage);
  }
}

function json(io: Io, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function withDb<T>(flags: Flags, io: Io, fn: (db: Db) => T): T {
  const db = openDb(resolveDataDir(flags['data-dir'] as string | undefined, io.env));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The config a gateway uses: --config, else flightlog.yaml in the data dir, else none (no connections). */
export function findConfig(flag: string | undefined, dataDir: string): FlightlogConfig {
  if (flag) return loadConfig(path.resolve(flag));
  const inData = path.join(dataDir, 'flightlog.yaml');
  if (fs.existsSync(inData)) return loadConfig(inData);
  return validateConfig({}, '(no config)');
}

function positiveInt(v: string | boolean | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} expects a whole number > 0, got "${String(v)}"`);
  return n;
}

/** Runs one CLI command; returns the exit code. Long-running commands resolve when they end. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      case '--version':
      case 'version':
        io.stdout.write(VERSION + '\n');
        return 0;
      case 'gateway': {
        const { flags } = parse(rest, { config: { type: 'string', short: 'c' } }, 0, 'flightlog gateway [--config FILE] [--data-dir DIR]');
        const { runGatewayCommand } = await import('./gateway-command');
        return await runGatewayCommand({ configFile: flags.config as string | undefined, dataDir: flags['data-dir'] as string | undefined }, io);
      }
      case 'ui':
      case 'start': {
        const { flags } = parse(rest, { config: { type: 'string', short: 'c' }, open: { type: 'boolean' } }, 0, `flightlog ${command} [--config FILE] [--data-dir DIR] [--open]`);
        const ui = await import('./ui-command');
        const o = { configFile: flags.config as string | undefined, dataDir: flags['data-dir'] as string | undefined, open: flags.open === true };
        return await (command === 'ui' ? ui.runUiCommand(o, io) : ui.runStartCommand(o, io));
      }
      case 'identity':
        return await identityCommand(rest, io);
      case 'open': {
        const { flags, positionals } = parse(rest, {}, Infinity, 'flightlog open FILE…');
        const { runOpenCommand } = await import('./open-command');
        return await runOpenCommand({ files: positionals, dataDir: flags['data-dir'] as string | undefined }, io);
      }
      case 'export':
      case 'verify':
      case 'trust': {
        const bundle = await import('./bundle-commands');
        if (command === 'export') return await bundle.runExportCommand(rest, io);
        if (command === 'verify') return await bundle.runVerifyCommand(rest, io);
        return await bundle.runTrustCommand(rest, io);
      }
      case 'gc': {
        const { runGcCommand } = await import('./gc-command');
        return runGcCommand(rest, io);
      }
      case 'secret':
        return await secretCommand(rest, io);
      case 'mask': {
        const usage = 'flightlog mask [FILE]';
        const { flags, positionals } = parse(rest, {}, 1, usage);
        return await maskCommand(positionals[0], flags, io);
      }
      case 'run': {
        const usage = 'flightlog run [--identity NAME] -- CMD …';
        const { flags, positionals } = parse(rest, { identity: { type: 'string' } }, Infinity, usage);
        const { runRunCommand } = await import('./run-command');
        return await runRunCommand({ identity: flags.identity as string | undefined, dataDir: flags['data-dir'] as string | undefined, argv: positionals }, io);
      }
      case 'sessions': {
        const { flags } = parse(rest, { json: { type: 'boolean' }, limit: { type: 'string' }, identity: { type: 'string' }, connection: { type: 'string' }, protocol: { type: 'string' } }, 0, 'flightlog sessions [--json] [--limit N]');
        const list = withDb(flags, io, (db) =>
          listSessions(db, {
            limit: positiveInt(flags.limit, 'limit') ?? 1000,
            identity: flags.identity as string | undefined,
            connection: flags.connection as string | undefined,
            protocol: flags.protocol as string | undefined,
          }).sessions,
        );
        if (flags.json) json(io, list);
        else io.stdout.write(formatSessions(list) + formatTombstones(withDb(flags, io, (db) => listTombstones(db))));
        return 0;
      }
      case 'show': {
        const { flags, positionals } = parse(rest, { json: { type: 'boolean' }, run: { type: 'string' } }, 1, 'flightlog show SESSION [--json] | show --run RUN [--json]');
        if (flags.run !== undefined) {
          if (positionals[0]) throw new UsageError('show takes a session or --run RUN, not both (usage: flightlog show --run RUN [--json])');
          const { runTimeline } = await import('../store/runs');
          const { formatRunTimeline } = await import('./format');
          const timeline = withDb(flags, io, (db) => runTimeline(db, flags.run as string));
          if (flags.json) json(io, timeline);
          else io.stdout.write(formatRunTimeline(timeline));
          return 0;
        }
        if (!positionals[0]) throw new UsageError('show needs a session id (usage: flightlog show SESSION [--json])');
        const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
        const key = dataDirKey(dataDir);
        const detail = withDb(flags, io, (db) => {
          const d = getSession(db, positionals[0]);
          if (!key) return d;
          // like the app's badge: "sealed" only when the chain, the seal and the rows check out
          const r = checkSession(db, d.id, key);
          return { ...d, sealed: r.state === 'verified' || r.state === 'legacy', integrity: { state: r.state, message: r.message } };
        });
        if (flags.json) json(io, detail);
        else io.stdout.write(formatSessionDetail(detail));
        return 0;
      }
      case 'search': {
        const { flags, positionals } = parse(rest, { json: { type: 'boolean' }, limit: { type: 'string' } }, 1, 'flightlog search TEXT [--json]');
        if (!positionals[0]) throw new UsageError('search needs some text (usage: flightlog search TEXT [--json])');
        const hits = withDb(flags, io, (db) => search(db, positionals[0], { limit: positiveInt(flags.limit, 'limit') }));
        if (flags.json) json(io, hits);
        else io.stdout.write(formatSearch(hits));
        return 0;
      }
      case 'findings': {
        const { flags } = parse(rest, { json: { type: 'boolean' }, session: { type: 'string' } }, 0, 'flightlog findings [--json] [--session SESSION]');
        const list = withDb(flags, io, (db) => listFindings(db, { sessionId: flags.session as string | undefined }));
        if (flags.json) json(io, list);
        else io.stdout.write(formatFindings(list));
        return 0;
      }
      case 'policy': {
        const { runPolicyCommand } = await import('./policy-command');
        return await runPolicyCommand(rest, io);
      }
      case 'pending':
      case 'approve':
      case 'deny': {
        const approvals = await import('./approvals-command');
        return await (command === 'pending' ? approvals.runPendingCommand(rest, io) : approvals.runDecideCommand(command, rest, io));
      }
      case 'runs': {
        const { flags } = parse(rest, { json: { type: 'boolean' } }, 0, 'flightlog runs [--json]');
        const { runCounts } = await import('../store/runs');
        const { formatRunsWithCounts } = await import('./format');
        const list = withDb(flags, io, (db) => listRuns(db).map((r) => ({ ...r, counts: runCounts(db, r.id) })));
        if (flags.json) json(io, list);
        else io.stdout.write(formatRunsWithCounts(list));
        return 0;
      }
      case 'blame': {
        const usage = 'flightlog blame TARGET [--json] [--since TIME]';
        const { flags, positionals } = parse(rest, { json: { type: 'boolean' }, since: { type: 'string' } }, 1, usage);
        if (!positionals[0]) throw new UsageError(`blame needs a target such as orders, file:web-1:/etc/nginx/nginx.conf or http:api:/v1/users/* (usage: ${usage})`);
        const { blame } = await import('../store/blame');
        const { formatBlame } = await import('./format');
        const since = flags.since === undefined ? undefined : blameSince(flags.since as string, usage);
        const report = withDb(flags, io, (db) => blame(db, positionals[0], { since }));
        if (flags.json) json(io, report);
        else io.stdout.write(formatBlame(report));
        return 0;
      }
      case 'mcp': {
        const { runMcpCommand } = await import('./mcp-command');
        return await runMcpCommand(rest, io);
      }
      default:
        throw new UsageError(`unknown command "${command}" (run "flightlog help" for the list)`);
    }
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout.write(`usage: ${err.usage}\n`);
      return 0;
    }
    return reportError(err, io);
  }
}

/** "Last known good": an ISO time, or a duration back from now (30m, 12h, 2d, 1w). */
function blameSince(v: string, usage: string): string {
  const m = /^(\d+)\s*([mhdw])$/.exec(v.trim());
  if (m) return new Date(Date.now() - Number(m[1]) * { m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2] as 'm' | 'h' | 'd' | 'w']).toISOString();
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since expects a time such as 2026-11-29T22:00:00Z or a duration such as 2h, got "${v}" (usage: ${usage})`);
  return new Date(t).toISOString();
}

export function reportError(err: unknown, io: Io): number {
  if (err instanceof FlightlogError) {
    io.stderr.write(`flightlog: ${err.message}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  io.stderr.write(`flightlog: internal error: ${String(e?.message ?? e).split('\n')[0]}${io.env.FLIGHTLOG_DEBUG ? '\n' + e?.stack : ' (set FLIGHTLOG_DEBUG=1 for details)'}\n`);
  return 70;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function secretCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { registerSecret, listRegisteredSecrets } = await import('../masking-setup');
  switch (sub) {
    case 'add': {
      const usage = 'flightlog secret add NAME [--store]  (the value on stdin)';
      const { flags, positionals } = parse(rest, { store: { type: 'boolean' } }, 1, usage);
      if (!positionals[0]) throw new UsageError(`secret add needs a NAME (usage: ${usage})`);
      if ((io.stdin as NodeJS.ReadStream).isTTY) io.stderr.write('value (then Ctrl-D): ');
      const value = (await readStdin(io.stdin)).replace(/\r?\n$/, '');
      if (value === '') throw new FlightlogError('E_SECRET_VALUE', 'no value on stdin (usage: printf %s "$VALUE" | flightlog secret add NAME)');
      const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
      if (flags.store) {
        // also kept for the gateway to log in with: <dataDir>/secrets/NAME (0600), referenced as { file: … }
        const { storeSecret } = await import('../settings/secret-store');
        const stored = withDb(flags, io, (db) => storeSecret({ dataDir, db, name: positionals[0], value, fingerprintKey: ensureFingerprintKey(dataDir) }));
        await notifyGateway(dataDir, '/api/secrets/reload');
        io.stdout.write(`{ file: ${stored.file} }\n`);
        io.stderr.write(`stored secret ${stored.name} in ${stored.file} (0600); reference it in flightlog.yaml as the line above${stored.forms ? '; masked by value from now on' : ''}\n`);
        return 0;
      }
      const forms = withDb(flags, io, (db) => registerSecret(db, positionals[0], value, ensureFingerprintKey(dataDir)));
      const reloaded = await notifyGateway(dataDir, '/api/secrets/reload');
      io.stderr.write(`registered secret ${positionals[0]} (${forms} encoded forms, stored as digests only)${reloaded ? '; the running gateway masks it from now on' : ''}\n`);
      return 0;
    }
    case 'list': {
      const { flags } = parse(rest, { json: { type: 'boolean' } }, 0, 'flightlog secret list [--json]');
      const list = withDb(flags, io, (db) => listRegisteredSecrets(db));
      if (flags.json) json(io, list);
      else io.stdout.write(list.length ? list.map((s) => `${s.name}  (${s.forms} forms, ${s.createdAt.slice(0, 10)})`).join('\n') + '\n' : 'no registered secrets\n');
      return 0;
    }
    default:
      throw new UsageError(`unknown secret command "${sub ?? ''}" (expected add or list)`);
  }
}

/** Tells a running gateway of this data dir about a change; false when none is running. */
async function notifyGateway(dataDir: string, route: string): Promise<boolean> {
  const { findRunningGateway } = await import('./run-command');
  let gw;
  try {
    gw = findRunningGateway(dataDir);
  } catch {
    return false;
  }
  try {
    const res = await fetch(gw.url + route, { method: 'POST', headers: { authorization: `Bearer ${gw.token}` } });
    return res.ok;
  } catch {
    return false;
  }
}

async function maskCommand(file: string | undefined, flags: Flags, io: Io): Promise<number> {
  const { createGatewayMasker } = await import('../masking-setup');
  const { runMaskCommand } = await import('../masking');
  let input: NodeJS.ReadableStream = io.stdin;
  if (file !== undefined && file !== '-') {
    try {
      fs.accessSync(file, fs.constants.R_OK);
      if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    } catch (err) {
      throw new FlightlogError('E_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    input = fs.createReadStream(file);
  }
  const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
  const masker = withDb(flags, io, (db) => createGatewayMasker(db, ensureFingerprintKey(dataDir)));
  return runMaskCommand({ input, output: io.stdout, stderr: io.stderr, masker });
}

async function identityCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'add': {
      const usage = 'flightlog identity add NAME --kind agent|human';
      const { flags, positionals } = parse(rest, { kind: { type: 'string' } }, 1, usage);
      if (!positionals[0]) throw new UsageError(`identity add needs a NAME (usage: ${usage})`);
      const kind = (flags.kind as string | undefined) ?? 'agent';
      if (kind !== 'agent' && kind !== 'human') throw new UsageError(`--kind must be agent or human, got "${kind}"`);
      const token = withDb(flags, io, (db) => addIdentity(db, positionals[0], kind));
      io.stdout.write(token + '\n');
      return 0;
    }
    case 'add-key': {
      const usage = 'flightlog identity add-key NAME PUBKEYFILE';
      const { flags, positionals } = parse(rest, {}, 2, usage);
      if (positionals.length < 2) throw new UsageError(`identity add-key needs NAME and PUBKEYFILE (usage: ${usage})`);
      let line: string;
      try {
        line = fs.readFileSync(positionals[1], 'utf8');
      } catch (err) {
        throw new FlightlogError('E_FILE', `cannot read ${positionals[1]}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
      }
      const fp = withDb(flags, io, (db) => addIdentityKey(db, positionals[0], line));
      io.stdout.write(`${fp}\n`);
      return 0;
    }
    case 'list': {
      const { flags } = parse(rest, { json: { type: 'boolean' } }, 0, 'flightlog identity list [--json]');
      const list = withDb(flags, io, (db) => listIdentities(db));
      if (flags.json) json(io, list);
      else io.stdout.write(formatIdentities(list));
      return 0;
    }
    case 'revoke': {
      const usage = 'flightlog identity revoke NAME';
      const { flags, positionals } = parse(rest, {}, 1, usage);
      if (!positionals[0]) throw new UsageError(`identity revoke needs a NAME (usage: ${usage})`);
      withDb(flags, io, (db) => revokeIdentity(db, positionals[0]));
      // a running gateway ends the identity's live sessions now (it also polls the store)
      const told = await notifyGateway(resolveDataDir(flags['data-dir'] as string | undefined, io.env), '/api/revocations/check');
      io.stderr.write(`revoked ${positionals[0]}${told ? ' (the running gateway ends its live sessions)' : ''}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown identity command "${sub ?? ''}" (expected add, add-key, list or revoke)`);
  }
}
