import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { createHash } from 'node:crypto';
import type { Db } from './store/db';
import { openDb } from './store/db';
import { ensureFingerprintKey, ensureGatewayKey, type GatewayKey } from './store/chain';
import { Recorder } from './store/recorder';
import { closeCrashedSessions } from './store/recovery';
import { checkCredential, checkScramToken, identityExists, scramVerifiers } from './store/identities';
import { resolveSecrets, retentionPolicy } from './config/load';
import { collectGarbage, type GcResult } from './store/retention';
import { recordConnectionConfigs, revocationChecks, runActiveCheck } from './store/connections';
import type { ConnectionConfig, FlightlogConfig } from './common/config-schema';
import type { Listener, ListenerContext, Logger } from './core/listener';
import type { AuthResult, Masker, Policy } from './common/types';
import { FlightlogError } from './core/errors';
import { LivePolicy } from './policy';
import { listenerFor } from './listeners';
import { startControlApi, type ControlApi, type ControlApiOptions } from './control-api/server';
import type { GatewayStatus } from './common/api-types';
import { createGatewayMasker, loadDigests } from './masking-setup';
import { withSettingsRoutes } from './settings/settings-routes';
import { Lineage } from './lineage';
import { shellFileTouches } from './ssh/file-targets';
import { ApprovalRegistry } from './approvals';
import { ViaTokens } from './mcp/via';

export { VERSION } from './core/version';

/** how often live sessions are checked against revocations made outside this process (the CLI) */
const REVOCATION_POLL_MS = 250;
import { VERSION } from './core/version';

export interface GatewayOptions {
  config: FlightlogConfig;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** extra control API routes (the web UI, replay), built once the store is open */
  controlExtra?: (db: Db) => ControlApiOptions['extra'];
}

interface ListenerState {
  connection: ConnectionConfig;
  listener: Listener | null;
  error: string | null;
  /** SHA-256 of the secret values it started with: a secret file rewritten since (Settings → Store) restarts it on the next reload */
  secrets?: string;
}

function secretsDigest(values: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify(Object.entries(values).sort())).digest('hex');
}

/** The injected upstream credentials, masked by value wherever they show up (kind `upstream-<name>`). */
function registerUpstreamSecrets(masker: Masker, all: Iterable<Record<string, string>>): void {
  for (const values of all) {
    for (const [name, v] of Object.entries(values)) masker.addKnownSecret(`upstream-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`, v);
  }
}

/** Logs to stderr, masking every line: a log is one of the places a secret must never reach. */
export function stderrLogger(masker: () => Masker | null): Logger {
  const line = (level: string, msg: string) => {
    const m = masker();
    process.stderr.write(`flightlog ${level}: ${m ? m.maskText(msg).text : msg}\n`);
  };
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), error: (m) => line('error', m) };
}

/** One gateway per data dir: a lock file with the pid, taken over when its process is gone. */
function takeLock(dataDir: string): () => void {
  const file = path.join(dataDir, 'gateway.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new FlightlogError('E_LOCKED', `another gateway (pid ${pid}) is running on ${dataDir}`);
      }
      fs.unlinkSync(file);
    }
  }
  throw new FlightlogError('E_LOCKED', `cannot lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Maps a listener's bind failure to the one line a user can act on. */
function listenError(connection: ConnectionConfig, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') {
    return new FlightlogError('E_ADDR_IN_USE', `connection "${connection.name}": ${connection.listen.host}:${connection.listen.port} is already in use`);
  }
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES') {
    return new FlightlogError('E_LISTEN', `connection "${connection.name}": cannot listen on ${connection.listen.host}:${connection.listen.port} (${e.code})`);
  }
  return err;
}

/** What a reload did, by connection name. */
export interface ReloadResult {
  started: string[];
  stopped: string[];
  unchanged: string[];
}

/**
 * V8 grows the heap by a factor it picks from how much time went to garbage collection. A bulk
 * SSH transfer allocates hundreds of MB of short-lived packet buffers a second; once a few
 * collections come close together that factor drops, the next limit is then close to the live
 * heap, and the process stays in that mode: a full collection every ~50 ms for the rest of the
 * transfer (scp at half speed, 1 run in 3–6). A fixed factor of 4 (the largest V8 picks itself)
 * keeps it out of that mode (docs/benchmarks.md, "The heap growing factor"). V8 reads the flag
 * at each collection, so setting it here, before any traffic, holds for this process.
 */
let gcTuned = false;
function steadyGarbageCollection(): void {
  if (gcTuned) return;
  gcTuned = true;
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--heap-growing-percent'));
  if (!given) v8.setFlagsFromString('--heap-growing-percent=300');
}

export class Gateway {
  private stopping: Promise<void> | null = null;
  /** the running config and what reload() needs to start listeners like start() did; set by start() */
  private runtime!: { config: FlightlogConfig; env: NodeJS.ProcessEnv; log: Logger; guardrails: LivePolicy; approvals: ApprovalRegistry; lineage: Lineage };
  private reloads: Promise<unknown> = Promise.resolve();
  private revocationTimer: NodeJS.Timeout | null = null;
  /** its statements, prepared at the first poll: it runs every 250 ms while sessions are live */
  private revocation: ReturnType<typeof revocationChecks> | null = null;

  private constructor(
    readonly dataDir: string,
    readonly db: Db,
    readonly key: GatewayKey,
    readonly masker: Masker,
    readonly recorder: Recorder,
    readonly listeners: Map<string, ListenerState>,
    readonly control: ControlApi,
    private readonly unlock: () => void,
  ) {}

  static async start(opts: GatewayOptions): Promise<Gateway> {
    steadyGarbageCollection();
    const env = opts.env ?? process.env;
    const dataDir = path.resolve(opts.dataDir);
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Resolve every upstream secret before touching anything, so a missing one is one clear error.
    const secrets = new Map(opts.config.connections.map((c) => [c.name, resolveSecrets(c, env, opts.config.file)]));
    const unlock = takeLock(dataDir);
    let db: Db | null = null;
    const cleanup: Array<() => Promise<void> | void> = [];
    try {
      db = openDb(dataDir);
      const key = ensureGatewayKey(dataDir);
      const masker = createGatewayMasker(db, ensureFingerprintKey(dataDir));
      registerUpstreamSecrets(masker, secrets.values());
      const log = opts.log ?? stderrLogger(() => masker);
      const crashed = closeCrashedSessions(db, key);
      const n = crashed.closed.length + crashed.unsealed.length;
      if (n) log.warn(`closed ${n} session${n === 1 ? '' : 's'} left open by a crash${crashed.unsealed.length ? ` (${crashed.unsealed.length} left unsealed: the committed chain does not verify; see flightlog verify)` : ''}`);
      const lineage = new Lineage();
      const recorder = new Recorder(db, {
        masker,
        signingKey: key.privateKey,
        keyFingerprint: key.fingerprint,
        onCommandStart: lineage.onCommandStart,
        onCommandFinish: lineage.onCommandFinish,
        touchesOf: shellFileTouches,
        onStoreFailure: (err) =>
          log.error(`recording store failed (${err.message}); no command is forwarded until the gateway is restarted with a writable data dir (${dataDir})`),
      });
      const now = new Date().toISOString();
      recordConnectionConfigs(db, opts.config.connections, now);

      const guardrails = new LivePolicy(opts.config);
      const approvals = new ApprovalRegistry({ runActive: runActiveCheck(db) });
      const listeners = new Map<string, ListenerState>();
      for (const connection of opts.config.connections) {
        const start = listenerFor(connection.protocol);
        if (!start) {
          log.warn(`connection "${connection.name}": no ${connection.protocol} listener in this build yet; skipped`);
          listeners.set(connection.name, { connection, listener: null, error: `no ${connection.protocol} listener in this build` });
          continue;
        }
        const ctx = Gateway.context(connection, opts.config, dataDir, secrets.get(connection.name) ?? {}, masker, log, db, recorder, guardrails.policy, approvals, lineage, (n) => listeners.get(n)?.listener?.address ?? null);
        let listener: Listener;
        try {
          listener = await start(ctx);
        } catch (err) {
          throw listenError(connection, err);
        }
        cleanup.push(() => listener.close());
        listeners.set(connection.name, { connection, listener, error: null, secrets: secretsDigest(secrets.get(connection.name) ?? {}) });
      }

      let gateway: Gateway | null = null;
      const control = await startControlApi({
        db,
        recorder,
        dataDir,
        masker,
        reloadSecrets: () => masker.addDigests(loadDigests(db!)),
        onRevocation: () => gateway?.checkRevocations(),
        approvals,
        integrityKey: key,
        host: opts.config.controlApi.host,
        port: opts.config.controlApi.port,
        status: () => gateway!.status(),
        extra: withSettingsRoutes(() => gateway, opts.controlExtra?.(db)),
      });
      fs.writeFileSync(path.join(dataDir, 'control.json'), JSON.stringify({ url: control.url, pid: process.pid }) + '\n', { mode: 0o600 });
      gateway = new Gateway(dataDir, db, key, masker, recorder, listeners, control, unlock);
      gateway.runtime = { config: opts.config, env, log, guardrails, approvals, lineage };
      gateway.revocationTimer = setInterval(() => gateway?.checkRevocations(), REVOCATION_POLL_MS);
      gateway.revocationTimer.unref();
      gateway.scheduleRetention();
      return gateway;
    } catch (err) {
      for (const c of cleanup.reverse()) await c();
      db?.close();
      unlock();
      throw err;
    }
  }

  private static context(
    connection: ConnectionConfig,
    config: FlightlogConfig,
    dataDir: string,
    secrets: Record<string, string>,
    masker: Masker,
    log: Logger,
    db: Db,
    recorder: Recorder,
    policy: Policy,
    approvals: ApprovalRegistry,
    lineage?: Lineage,
    listenerAddress?: (connection: string) => string | null,
  ): ListenerContext {
    const via = ViaTokens.of(db, dataDir);
    const allowed = (r: AuthResult): AuthResult => {
      if (r.ok && r.identity && !connection.identities.includes(r.identity)) {
        return { ok: false, identity: r.identity, reason: 'not-allowed', message: `identity "${r.identity}" may not use connection "${connection.name}"` };
      }
      return r;
    };
    return {
      connection,
      recording: config.recording,
      dataDir,
      configFile: config.file,
      secrets,
      masker,
      policy,
      log,
      authenticate(identity, credential) {
        const r = 'token' in credential ? via.tag(allowed(checkCredential(db, identity, credential)), credential) : allowed(checkCredential(db, identity, credential));
        // Every token-based login passes here: from now on its value (and encoded forms) is masked
        // by value too, beyond the `flt_` rule. Deduplicated by the masker.
        if (r.ok && 'token' in credential) masker.addKnownSecret('flightlog-token', credential.token);
        return r;
      },
      scramVerifiers: (identity) => scramVerifiers(db, identity),
      knownIdentity: (identity) => identityExists(db, identity),
      authenticateScramToken: (identity, tokenId) => via.tag(allowed(checkScramToken(db, identity, tokenId)), { tokenId }),
      openSession({ via: mcpSession, ...open }) {
        if (!mcpSession) return recorder.openSession({ ...open, connection: connection.name, protocol: connection.protocol });
        const s = recorder.openSession({ ...open, meta: { ...open.meta, viaMcpSession: mcpSession }, connection: connection.name, protocol: connection.protocol });
        lineage?.bindVia(s.id, mcpSession);
        return s;
      },
      viaCredential(name, identity, runId) {
        const address = listenerAddress?.(name);
        return address ? via.mint(address, identity, runId, masker) : null;
      },
      holdForApproval: (req) => {
        const cause = lineage?.causeOf(req, connection.protocol === 'postgres' ? 'sql' : connection.protocol === 'ssh' ? 'shell' : connection.protocol === 'mcp' ? 'mcp' : connection.protocol === 'kubernetes' ? 'kubectl' : 'http', req.commandText);
        const causedBy = cause ? { ...cause, text: cause.text.length > 300 ? cause.text.slice(0, 300) + '…' : cause.text } : null;
        return approvals.request({ ...req, causedBy, connection: connection.name, protocol: connection.protocol });
      },
      recordFailedAttempt(a) {
        recorder.recordFailedAttempt({ ...a, connection: connection.name, protocol: connection.protocol });
      },
    };
  }

  status(): GatewayStatus {
    return {
      version: VERSION,
      dataDir: this.dataDir,
      keyFingerprint: this.key.fingerprint,
      listeners: [...this.listeners.values()].map((l) => ({
        connection: l.connection.name,
        protocol: l.connection.protocol,
        address: l.listener?.address ?? null,
        error: l.error,
        llm: l.connection.llm,
        identities: l.connection.identities,
      })),
      liveSessions: this.recorder.openSessions().length,
      store: this.recorder.storeStatus(),
    };
  }

  /**
   * Ends the live sessions whose credential is no longer valid: the identity was revoked
   * (`flightlog identity revoke`, possibly run by the CLI on the store with no word to us) or the
   * run's token was (its agent exited). Polled, and called at once when the control API hears of one.
   */
  checkRevocations(): void {
    if (this.stopping) return;
    const live = this.recorder.liveSessionInfo();
    if (live.length === 0) return;
    const identities = new Set<string>();
    const runs = new Set<string>();
    try {
      const { identityRevoked, runTokenRevoked } = (this.revocation ??= revocationChecks(this.db));
      for (const name of new Set(live.map((s) => s.rawIdentity).filter((x): x is string => x !== null))) {
        if (identityRevoked(name)) identities.add(name);
      }
      for (const run of new Set(live.map((s) => s.runId).filter((x): x is string => x !== null))) {
        if (runTokenRevoked(run)) runs.add(run);
      }
    } catch (err) {
      // a busy or failing store must not end sessions; the next poll tries again
      this.runtime.log.warn(`checking revocations failed: ${(err as Error).message}`);
      return;
    }
    if (identities.size) {
      const n = this.recorder.terminate((s) => s.rawIdentity !== null && identities.has(s.rawIdentity), 'revoked', 'Flightlog token revoked');
      if (n) this.runtime.log.info(`ended ${n} live session(s) of revoked identit${identities.size === 1 ? 'y' : 'ies'} ${[...identities].join(', ')}`);
    }
    if (runs.size) {
      const n = this.recorder.terminate((s) => s.runId !== null && runs.has(s.runId), 'run ended', 'Flightlog run ended; its token was revoked');
      if (n) this.runtime.log.info(`ended ${n} live session(s) of ended run(s) ${[...runs].join(', ')}`);
    }
  }

  /** The config the listeners run now (the one given to start(), or the last reload()). */
  get config(): FlightlogConfig {
    return this.runtime.config;
  }

  /** The environment `{ env: NAME }` secrets are read from (Settings says which are missing). */
  get env(): NodeJS.ProcessEnv {
    return this.runtime.env;
  }

  /**
   * Takes a new config live without a restart: listeners whose connection was removed or changed
   * stop (ending only their own sessions), new and changed ones start, unchanged ones keep running
   * with their live sessions. Every secret is resolved first, so a missing one changes nothing; if
   * a listener cannot start, the ones this call started are closed, the stopped ones are put back,
   * and the error is thrown. Reloads run one at a time.
   */
  reload(config: FlightlogConfig): Promise<ReloadResult> {
    const run = this.reloads.then(() => this.applyReload(config));
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async applyReload(config: FlightlogConfig): Promise<ReloadResult> {
    if (this.stopping) throw new FlightlogError('E_STOPPING', 'the gateway is shutting down');
    const { env, log } = this.runtime;
    // new rules apply to the next command on every listener, restarted or not
    this.runtime.guardrails.reload(config);
    const next = new Map(config.connections.map((c) => [c.name, c]));
    const same = (a: ConnectionConfig, b: ConnectionConfig) => JSON.stringify(a) === JSON.stringify(b);
    // the same config reading a rewritten secret file is a change too; an unreadable one is left to the next start
    const rotated = (s: ListenerState, c: ConnectionConfig) => {
      if (s.secrets === undefined) return false;
      try {
        return secretsDigest(resolveSecrets(c, env, config.file)) !== s.secrets;
      } catch {
        return false;
      }
    };
    const retiring = [...this.listeners.values()].filter((s) => !next.has(s.connection.name) || !same(s.connection, next.get(s.connection.name)!) || rotated(s, next.get(s.connection.name)!));
    const unchanged = [...this.listeners.values()].filter((s) => !retiring.includes(s)).map((s) => s.connection.name);
    const toStart = config.connections.filter((c) => !unchanged.includes(c.name));
    const secrets = new Map(toStart.map((c) => [c.name, resolveSecrets(c, env, config.file)]));

    const started = new Map<string, ListenerState>();
    const startOne = async (c: ConnectionConfig, cfg: FlightlogConfig, values: Record<string, string>): Promise<ListenerState> => {
      const start = listenerFor(c.protocol);
      if (!start) return { connection: c, listener: null, error: `no ${c.protocol} listener in this build` };
      try {
        const listener = await start(Gateway.context(c, cfg, this.dataDir, values, this.masker, log, this.db, this.recorder, this.runtime.guardrails.policy, this.runtime.approvals, this.runtime.lineage, (n) => this.listeners.get(n)?.listener?.address ?? null));
        return { connection: c, listener, error: null, secrets: secretsDigest(values) };
      } catch (err) {
        throw listenError(c, err);
      }
    };
    const startAll = async (list: ConnectionConfig[]) => {
      for (const c of list) started.set(c.name, await startOne(c, config, secrets.get(c.name) ?? {}));
    };
    // A brand-new connection whose port no retiring listener holds can start before anything
    // stops: if it fails, nothing has changed yet.
    const retiringPorts = new Set(retiring.map((s) => s.connection.listen.port).filter((p) => p !== 0));
    const early = toStart.filter((c) => !this.listeners.has(c.name) && !retiringPorts.has(c.listen.port));
    try {
      await startAll(early);
    } catch (err) {
      await Promise.allSettled([...started.values()].map((s) => s.listener?.close()));
      throw err;
    }
    await Promise.allSettled(retiring.map((s) => s.listener?.close()));
    try {
      await startAll(toStart.filter((c) => !early.includes(c)));
    } catch (err) {
      await Promise.allSettled([...started.values()].map((s) => s.listener?.close()));
      for (const old of retiring) {
        try {
          this.listeners.set(old.connection.name, await startOne(old.connection, this.runtime.config, resolveSecrets(old.connection, env, this.runtime.config.file)));
        } catch (again) {
          const message = again instanceof FlightlogError ? again.message : 'could not restart';
          log.error(`connection "${old.connection.name}": not restarted after a failed reload: ${message}`);
          this.listeners.set(old.connection.name, { connection: old.connection, listener: null, error: message });
        }
      }
      throw err;
    }

    registerUpstreamSecrets(this.masker, secrets.values());
    const now = new Date().toISOString();
    recordConnectionConfigs(this.db, toStart, now);
    // Same Map object (callers hold it), rebuilt in config order.
    const kept = new Map(this.listeners);
    this.listeners.clear();
    for (const c of config.connections) this.listeners.set(c.name, started.get(c.name) ?? kept.get(c.name)!);
    this.runtime = { ...this.runtime, config };
    const result = { started: [...started.keys()], stopped: retiring.map((s) => s.connection.name), unchanged };
    log.info(`config reloaded: started ${result.started.join(', ') || 'none'}; stopped ${result.stopped.join(', ') || 'none'}; unchanged ${unchanged.length}`);
    return result;
  }

  private retentionTimer: NodeJS.Timeout | null = null;

  /** Runs retention now with the running config (`flightlog gc`); null when no retention is configured. */
  runRetention(): GcResult | null {
    const { config, log } = this.runtime;
    if (this.stopping || (config.retention === undefined && !config.connections.some((c) => c.retention !== undefined))) return null;
    try {
      const r = collectGarbage(this.db, { retentionOf: retentionPolicy(config), key: this.key });
      if (r.removed.length) log.info(`retention: removed ${r.removed.length} session${r.removed.length === 1 ? '' : 's'} (${r.events} events); signed tombstones kept`);
      return r;
    } catch (err) {
      log.warn(`retention: ${(err as Error).message}`);
      return null;
    }
  }

  /** Retention a minute after start, then once a day, when the config sets one. */
  private scheduleRetention(): void {
    const run = (): void => void this.runRetention();
    this.retentionTimer = setTimeout(() => {
      run();
      this.retentionTimer = setInterval(run, 24 * 3600_000).unref();
    }, 60_000).unref();
  }

  /** Stops listening, closes and seals every open session, commits, closes the store. */
  stop(reason = 'gateway shut down'): Promise<void> {
    if (!this.stopping) {
      if (this.retentionTimer) clearTimeout(this.retentionTimer);
      this.stopping = (async () => {
        if (this.revocationTimer) clearInterval(this.revocationTimer);
        // a held command is refused, not left waiting on a gateway that is going away
        this.runtime.approvals.cancelAll();
        await Promise.allSettled([...this.listeners.values()].map((l) => l.listener?.close()));
        await this.recorder.closeAll(reason).catch(() => undefined);
        await this.recorder.close().catch(() => undefined);
        await this.control.close();
        this.db.close();
        try {
          fs.unlinkSync(path.join(this.dataDir, 'control.json'));
        } catch {
          // already gone
        }
        this.unlock();
      })();
    }
    return this.stopping;
  }
}
