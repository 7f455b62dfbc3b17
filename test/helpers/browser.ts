/**
 * E2E plumbing: builds the renderer when it is missing, runs the real gateway with the web UI
 * mounted (as `flightlog ui` does), and drives Debian's Chromium through playwright-core.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Gateway } from '../../gateway/gateway';
import { validateConfig } from '../../gateway/config/load';
import { addIdentity } from '../../gateway/store/identities';
import { createUiRoutes, type UiRoutes } from '../../gateway/control-api/static';
import { uiUrl } from '../../gateway/cli/ui-command';
import type { Logger } from '../../gateway/core/listener';
import { tempDir } from './tmp';

export const CHROMIUM = process.env.FLIGHTLOG_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The renderer (dist-…/renderer) beside the compiled tests; built on demand so `node --test` works after tsc alone. */
export function ensureRenderer(): string {
  const dir = path.resolve(__dirname, '..', '..', 'renderer');
  if (!fs.existsSync(path.join(dir, 'index.html')) || process.env.FLIGHTLOG_REBUILD_RENDERER) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-renderer.js'), '--out', dir], { stdio: 'inherit', cwd: ROOT });
    if (r.status !== 0) throw new Error('building the renderer failed');
  }
  return dir;
}

export function artifactsDir(): string {
  const dir = path.join(ROOT, 'test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

export interface UiGateway {
  gateway: Gateway;
  dataDir: string;
  /** the URL `flightlog ui` prints (token in the fragment) */
  url: string;
  logs: string[];
  addIdentity(name: string): string;
  address(connection: string): { host: string; port: number };
  close(): Promise<void>;
}

/** The real gateway with the UI routes, on a temp data dir; connections as in flightlog.yaml (listen defaults to a free port). */
export async function startUiGateway(opts: { connections?: unknown[]; env?: Record<string, string>; guardrails?: unknown[] } = {}): Promise<UiGateway> {
  const rendererDir = ensureRenderer();
  const dataDir = tempDir('flightlog-e2e-');
  const connections = (opts.connections ?? []).map((c) => ({ listen: '127.0.0.1:0', ...(c as object) }));
  const config = validateConfig(opts.guardrails ? { connections, guardrails: opts.guardrails } : { connections }, 'e2e-config.yaml');
  const logs: string[] = [];
  const line = (level: string) => (msg: string) => logs.push(`${level}: ${msg}`);
  const log: Logger = { info: line('info'), warn: line('warn'), error: line('error') };
  let routes: UiRoutes | null = null;
  const gateway = await Gateway.start({
    config,
    dataDir,
    env: { ...process.env, ...(opts.env ?? {}) },
    log,
    controlExtra: (db) => {
      routes = createUiRoutes({ db, rendererDir });
      return routes.extra;
    },
  });
  return {
    gateway,
    dataDir,
    url: uiUrl(gateway.control.url, gateway.control.token),
    logs,
    addIdentity: (name) => addIdentity(gateway.db, name, 'agent'),
    address(name) {
      const l = gateway.listeners.get(name)?.listener;
      if (!l) throw new Error(`no listener for connection ${name}`);
      const i = l.address.lastIndexOf(':');
      return { host: l.address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(l.address.slice(i + 1)) };
    },
    async close() {
      await gateway.stop('test finished');
      (routes as UiRoutes | null)?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
