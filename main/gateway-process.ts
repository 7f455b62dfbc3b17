/**
 * The gateway as a child process of the desktop shell: started with Electron's own Node
 * (ELECTRON_RUN_AS_NODE, so better-sqlite3 built for Electron loads), ready once it prints its
 * UI URL, restarted with backoff when it dies, and reported "down" when it keeps dying.
 * Heavy traffic never passes through Electron main: the renderer talks to the gateway directly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { GatewayState } from './bridge-types';

export interface GatewayProcessOptions {
  /** the flightlog CLI entry (bin/flightlog.js) */
  cli: string;
  configFile?: string;
  dataDir?: string;
  /** the Node to run it with: Electron's binary in RUN_AS_NODE mode */
  execPath: string;
  env?: NodeJS.ProcessEnv;
}

const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];
/** this many crashes within the window leaves the gateway down until the user restarts it */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 120_000;
const READY_TIMEOUT_MS = 30_000;

export class GatewayProcess extends EventEmitter {
  private child: ChildProcess | null = null;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  state: GatewayState = { state: 'starting' };

  constructor(private readonly opts: GatewayProcessOptions) {
    super();
  }

  private setState(s: GatewayState): void {
    this.state = s;
    this.emit('state', s);
  }

  start(): void {
    if (this.child) return;
    this.stopping = false;
    this.setState({ state: 'starting' });
    const args = [this.opts.cli, 'ui'];
    if (this.opts.configFile) args.push('--config', this.opts.configFile);
    if (this.opts.dataDir) args.push('--data-dir', this.opts.dataDir);
    const child = spawn(this.opts.execPath, args, {
      env: { ...(this.opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let out = '';
    let lastErr = '';
    const readyTimer = setTimeout(() => {
      if (this.state.state === 'starting') child.kill('SIGTERM');
    }, READY_TIMEOUT_MS);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      if (this.state.state === 'ready') return;
      out += d;
      const m = /^ui\s+(http:\/\/127\.0\.0\.1:\d+\/#token=\S+)$/m.exec(out);
      if (m) {
        clearTimeout(readyTimer);
        out = '';
        this.setState({ state: 'ready', url: m[1], liveSessions: 0 });
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      const lines = d.trim().split('\n');
      lastErr = lines[lines.length - 1] ?? lastErr;
    });
    const onGone = (why: string) => {
      clearTimeout(readyTimer);
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
    this.crashes = this.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length >= MAX_CRASHES) {
      this.setState({ state: 'down', reason, restartInMs: null });
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.crashes.length - 1, BACKOFF_MS.length - 1)];
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

  /** SIGTERM (the gateway seals its open sessions), SIGKILL after 10 s. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
