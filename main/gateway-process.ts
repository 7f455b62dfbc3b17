/**
 * The gateway as a child process of the desktop shell: started with Electron's own Node
 * (ELECTRON_RUN_AS_NODE, so better-sqlite3 built for Electron loads), ready once it has written
 * `control.json` (its control URL and pid) to the data dir, restarted with backoff when it dies,
 * and reported "down" when it keeps dying. Nothing here needs Electron: unit tests run it against
 * the real gateway with plain Node. Heavy traffic never passes through Electron main: the
 * renderer talks to the gateway directly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveDataDir } from '../gateway/core/paths';
import type { GatewayState } from './bridge-types';

export interface GatewayProcessOptions {
  /** the flightlog CLI entry (bin/flightlog.js) */
  cli: string;
  configFile?: string;
  /** where the gateway keeps its store; `control.json` there says it is up (default: as the CLI resolves it) */
  dataDir?: string;
  /** the Node to run it with: Electron's binary in RUN_AS_NODE mode */
  execPath: string;
  env?: NodeJS.ProcessEnv;
  /** delays before each restart after a crash, the last one repeated */
  backoffMs?: number[];
  /** this many crashes within `crashWindowMs` leaves the gateway down until the user restarts it */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** a gateway not ready by then is stopped and counted as a crash */
  readyTimeoutMs?: number;
  /** how often `control.json` is looked at while starting (a watch on the dir wakes it sooner) */
  readyPollMs?: number;
  /** how long a stop waits for the gateway to seal its sessions before SIGKILL */
  stopTimeoutMs?: number;
}

const DEFAULTS = { backoffMs: [1000, 2000, 5000, 10_000, 30_000], maxCrashes: 5, crashWindowMs: 120_000, readyTimeoutMs: 30_000, readyPollMs: 100, stopTimeoutMs: 10_000 };

/**
 * The UI URL once `control.json` names this gateway's pid (never a stale file a dead gateway
 * left), with the control token from the data dir; null while it is not up yet.
 */
export function readyUrl(dataDir: string, pid: number | undefined): string | null {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(path.join(dataDir, 'control.json'), 'utf8'));
  } catch {
    // absent, or being written: not ready yet
    return null;
  }
  const c = doc as { url?: unknown; pid?: unknown };
  if (typeof c.url !== 'string' || c.pid !== pid || !/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(c.url)) return null;
  let token: string;
  try {
    token = fs.readFileSync(path.join(dataDir, 'control-token'), 'utf8').trim();
  } catch {
    return null;
  }
  return token ? `${c.url}/#token=${encodeURIComponent(token)}` : null;
}

export class GatewayProcess extends EventEmitter {
  private child: ChildProcess | null = null;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly o: typeof DEFAULTS;
  readonly dataDir: string;
  state: GatewayState = { state: 'starting' };

  constructor(private readonly opts: GatewayProcessOptions) {
    super();
    this.o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => k in DEFAULTS && v !== undefined)) };
    this.dataDir = resolveDataDir(opts.dataDir, opts.env ?? process.env);
  }

  private setState(s: GatewayState): void {
    this.state = s;
    this.emit('state', s);
  }

  /** The pid of the running gateway, if one runs. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    if (this.child) return;
    this.stopping = false;
    this.setState({ state: 'starting' });
    const args = [this.opts.cli, 'ui'];
    if (this.opts.configFile) args.push('--config', this.opts.configFile);
    args.push('--data-dir', this.dataDir);
    const child = spawn(this.opts.execPath, args, {
      env: { ...(this.opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      // stdout is not read: readiness comes from control.json; stderr's last line says why it died
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    let lastErr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      const lines = d.trim().split('\n').filter(Boolean);
      if (lines.length) lastErr = lines[lines.length - 1];
    });

    let watcher: fs.FSWatcher | null = null;
    const check = () => {
      if (this.child !== child || this.state.state !== 'starting') return;
      const url = readyUrl(this.dataDir, child.pid);
      if (!url) return;
      stopWaiting();
      this.setState({ state: 'ready', url, liveSessions: 0 });
    };
    const poll = setInterval(check, this.o.readyPollMs);
    const readyTimer = setTimeout(() => {
      if (this.child === child && this.state.state === 'starting') {
        lastErr = `not ready after ${this.o.readyTimeoutMs < 1000 ? `${this.o.readyTimeoutMs} ms` : `${Math.round(this.o.readyTimeoutMs / 1000)} s`}`;
        child.kill('SIGTERM');
      }
    }, this.o.readyTimeoutMs);
    const stopWaiting = () => {
      clearInterval(poll);
      clearTimeout(readyTimer);
      watcher?.close();
      watcher = null;
    };
    try {
      fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
      watcher = fs.watch(this.dataDir, (_e, name) => {
        if (name === 'control.json') check();
      });
      watcher.on('error', () => undefined);
    } catch {
      // no watch on this file system: the poll alone finds it
    }

    const onGone = (why: string) => {
      stopWaiting();
      if (this.child !== child) return;
      this.child = null;
      if (this.stopping) return;
      this.scheduleRestart(lastErr.replace(/^flightlog:\s*/, '') || why);
    };
    child.on('error', (err) => onGone(err.message));
    child.on('exit', (code, signal) => onGone(`exited (${code ?? signal})`));
  }

  private scheduleRestart(reason: string): void {
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < this.o.crashWindowMs);
    this.crashes.push(now);
    if (this.crashes.length >= this.o.maxCrashes) {
      this.setState({ state: 'down', reason, restartInMs: null });
      return;
    }
    const delay = this.o.backoffMs[Math.min(this.crashes.length - 1, this.o.backoffMs.length - 1)];
    this.setState({ state: 'down', reason, restartInMs: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start();
    }, delay);
  }

  /** A manual restart: clears the crash history. */
  restart(): Promise<void> {
    this.crashes = [];
    return this.stop().then(() => this.start());
  }

  setLiveSessions(n: number): void {
    if (this.state.state === 'ready' && this.state.liveSessions !== n) this.setState({ ...this.state, liveSessions: n });
  }

  /** SIGTERM (the gateway seals its open sessions), SIGKILL after `stopTimeoutMs`. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), this.o.stopTimeoutMs);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page a window shows while the gateway starts or is down: a data: URL with its own CSP, the reason as text. */
export function downPage(state: GatewayState): string {
  const reason = state.state === 'down' ? state.reason : 'starting…';
  const retry = state.state === 'down' && state.restartInMs !== null ? `Restarting in ${Math.round(state.restartInMs / 1000)} s.` : state.state === 'down' ? 'Use Gateway → Restart gateway once the cause is fixed.' : '';
  const html = `<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>Flightlog</title>
<body style="background:#0b0f14;color:#d6dde6;font:14px system-ui;display:flex;align-items:center;justify-content:center;height:100vh;margin:0">
<div style="max-width:560px"><h2>${state.state === 'down' ? 'The gateway is down' : 'Starting the gateway…'}</h2><p style="color:#f85149;font-family:monospace">${escapeHtml(reason)}</p><p>${escapeHtml(retry)}</p>
<p style="color:#6b7889">No traffic passes unrecorded: while the gateway is down, agents cannot connect through it.</p></div></body>`;
  return `data:text/html;charset=utf-8,${encodeURIComponent(html)}`;
}
