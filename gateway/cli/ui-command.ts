/**
 * `flightlog ui`: the gateway plus the web UI on its control API port; prints the URL (token in
 * the fragment, which browsers never send to a server or put in a Referer).
 * `flightlog start`: the desktop app; where Electron cannot start, falls back to `ui`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VERSION } from '../core/version';
import { resolveDataDir } from '../core/paths';
import { Gateway } from '../gateway';
import { createUiRoutes, defaultRendererDir, type UiRoutes } from '../control-api/static';
import { findConfig, type Io } from './main';
import { printListeners, serveUntilSignal, startWithStablePort } from './serve';

export interface UiCommandOptions {
  configFile?: string;
  dataDir?: string;
  /** open the URL in the system browser (xdg-open / open / start) */
  open?: boolean;
}

/** The URL a browser opens: the token rides in the fragment. */
export function uiUrl(controlUrl: string, token: string): string {
  return `${controlUrl}/#token=${encodeURIComponent(token)}`;
}

/** Runs the gateway with the UI until SIGINT/SIGTERM; returns the exit code. */
export async function runUiCommand(opts: UiCommandOptions, io: Io): Promise<number> {
  const dataDir = resolveDataDir(opts.dataDir, io.env);
  const config = findConfig(opts.configFile, dataDir);
  const rendererDir = defaultRendererDir(io.env);
  let routes: UiRoutes | null = null;
  // the same URL on every start of this data dir, so an open tab reconnects by itself
  const gateway = await startWithStablePort(
    (c) =>
      Gateway.start({
        config: c,
        dataDir,
        env: io.env,
        controlExtra: (db) => {
          routes?.close();
          routes = createUiRoutes({ db, rendererDir });
          return routes.extra;
        },
      }),
    config,
    dataDir,
  );
  const out = io.stdout;
  out.write(`flightlog ui ${VERSION}\n`);
  out.write(`data dir   ${dataDir}\n`);
  out.write(`config     ${config.file ?? '(none)'}\n`);
  printListeners(gateway, io);
  if (!fs.existsSync(path.join(rendererDir, 'index.html'))) {
    io.stderr.write(`flightlog: the UI is not built (${rendererDir}): run "npm run build"\n`);
  }
  const url = uiUrl(gateway.control.url, gateway.control.token);
  out.write(`ui         ${url}\n`);
  out.write('ready\n');
  if (opts.open) openInBrowser(url, io);

  return serveUntilSignal(gateway, io, () => (routes as UiRoutes | null)?.close());
}

function openInBrowser(url: string, io: Io): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { detached: true, stdio: 'ignore' });
    child.on('error', () => io.stderr.write(`flightlog: could not open a browser (${cmd}); open the URL above\n`));
    child.unref();
  } catch {
    io.stderr.write(`flightlog: could not open a browser (${cmd}); open the URL above\n`);
  }
}

/**
 * The Electron binary's path, or why there is none. Reads the electron package's path.txt
 * itself: `require('electron')` would try to download a missing binary, which must never
 * happen from `flightlog start`.
 */
export function findElectron(env: NodeJS.ProcessEnv = process.env): { path: string } | { error: string } {
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    return { error: 'electron is not installed' };
  }
  const pathFile = path.join(pkgDir, 'path.txt');
  const rel = fs.existsSync(pathFile) ? fs.readFileSync(pathFile, 'utf8').trim() : '';
  const bin = env.ELECTRON_OVERRIDE_DIST_PATH ? path.join(env.ELECTRON_OVERRIDE_DIST_PATH, rel || 'electron') : rel ? path.join(pkgDir, 'dist', rel) : '';
  if (!bin || !fs.existsSync(bin)) return { error: 'the Electron binary is not installed' };
  return { path: bin };
}

/** The compiled Electron main entry: dist/main/main.js beside this file's dist/gateway. */
export function electronMainEntry(): string {
  return path.resolve(__dirname, '..', '..', 'main', 'main.js');
}

/**
 * `flightlog start`: launches the desktop app (which spawns its own gateway); if Electron is
 * missing or dies at once, serves the web UI instead and says so.
 */
export async function runStartCommand(opts: UiCommandOptions, io: Io): Promise<number> {
  const electron = findElectron(io.env);
  if ('error' in electron) {
    io.stderr.write(`flightlog: ${electron.error}; starting the web UI instead\n`);
    return runUiCommand(opts, io);
  }
  const args = [electronMainEntry()];
  if (opts.configFile) args.push('--config', path.resolve(opts.configFile));
  if (opts.dataDir) args.push('--data-dir', path.resolve(opts.dataDir));
  const env = { ...io.env };
  delete env.ELECTRON_RUN_AS_NODE;
  const started = Date.now();
  const outcome = await new Promise<{ code: number } | { error: string }>((resolve) => {
    const child = spawn(electron.path, args, { stdio: ['ignore', 'inherit', 'pipe'], env });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      if (stderr.length > 8192) stderr = stderr.slice(-8192);
      io.stderr.write(d);
    });
    child.on('error', (err) => resolve({ error: err.message }));
    child.on('exit', (code, signal) => {
      // Exiting at once without a window (no display, missing libraries) means "cannot start".
      if (code !== 0 && Date.now() - started < 5000) resolve({ error: stderr.trim().split('\n').pop() || `exit ${code ?? signal}` });
      else resolve({ code: code ?? 1 });
    });
  });
  if ('error' in outcome) {
    io.stderr.write(`flightlog: Electron could not start (${outcome.error}); starting the web UI instead\n`);
    return runUiCommand(opts, io);
  }
  return outcome.code;
}
