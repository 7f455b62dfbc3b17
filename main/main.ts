/**
 * Electron main: spawns the gateway (its own process), owns the windows, the menu, the tray
 * recording indicator, notifications and file dialogs, and opens `.flightlog` bundles from the
 * menu, by drag-and-drop and by file association. The renderer is locked down: contextIsolation,
 * sandbox, no nodeIntegration, the gateway's CSP, navigation and new windows denied, one typed
 * preload bridge, and a sender check on every IPC handler.
 */
import { app, BrowserWindow, dialog, Menu, nativeImage, Notification, session, shell, Tray, type MenuItemConstructorOptions } from 'electron';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { downPage, GatewayProcess } from './gateway-process';
import { registerIpc } from './ipc';
import type { EventChannels, GatewayState } from './bridge-types';

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'flightlog.js');
const PRELOAD = path.join(__dirname, 'preload.js');
const BUNDLE_EXT = '.flightlog';

interface Args {
  configFile?: string;
  dataDir?: string;
  bundles: string[];
}

function parseArgs(argv: string[]): Args {
  const out: Args = { bundles: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') out.configFile = argv[++i];
    else if (a === '--data-dir') out.dataDir = argv[++i];
    else if (a.toLowerCase().endsWith(BUNDLE_EXT)) out.bundles.push(path.resolve(a));
  }
  return out;
}

const args = parseArgs(process.argv.slice(app.isPackaged ? 1 : 2));
let mainWindow: BrowserWindow | null = null;
let tray: Tray | null = null;
let liveSessions = 0;
/** origins our windows may show (the gateway's UI, bundle viewers); everything else is denied */
const trustedOrigins = new Set<string>();
const gateway = new GatewayProcess({ cli: CLI, configFile: args.configFile, dataDir: args.dataDir, execPath: process.execPath });

/** Opens a URL in the system browser: http(s) only, never file: or custom schemes. */
function openExternal(url: string): void {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') void shell.openExternal(u.toString());
  } catch {
    // not a URL: ignore
  }
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

function send<C extends keyof EventChannels>(win: BrowserWindow | null, channel: C, payload: EventChannels[C]): void {
  if (win && !win.isDestroyed()) win.webContents.send(channel, payload);
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 900,
    minHeight: 600,
    show: false,
    backgroundColor: '#0b0f14',
    title: 'Flightlog',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
      navigateOnDragDrop: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  // A recorded title escape never reaches here (the replay filters it), and the page title stays ours.
  win.on('page-title-updated', (e) => e.preventDefault());
  return win;
}

function showState(state: GatewayState): void {
  if (!mainWindow || mainWindow.isDestroyed()) return;
  send(mainWindow, 'gateway:state', state);
  if (state.state === 'ready') {
    const origin = originOf(state.url);
    if (origin) trustedOrigins.add(origin);
    if (originOf(mainWindow.webContents.getURL()) !== origin) void mainWindow.loadURL(state.url);
  } else if (!trustedOrigins.has(originOf(mainWindow.webContents.getURL()) ?? '')) {
    void mainWindow.loadURL(downPage(state));
  }
}

/** A 16×16 dot for the tray: red while recording, grey when idle (BGRA pixels, no image files). */
function trayIcon(recording: boolean): Electron.NativeImage {
  const size = 16;
  const buf = Buffer.alloc(size * size * 4);
  const [b, g, r] = recording ? [0x6c, 0x5d, 0xff] : [0x89, 0x78, 0x6b];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - 7.5, y - 7.5);
      const i = (y * size + x) * 4;
      const a = d <= 5.5 ? 255 : d <= 6.5 ? Math.round(255 * (6.5 - d)) : 0;
      buf[i] = b;
      buf[i + 1] = g;
      buf[i + 2] = r;
      buf[i + 3] = a;
    }
  }
  return nativeImage.createFromBitmap(buf, { width: size, height: size });
}

function updateTray(): void {
  if (!tray) return;
  tray.setImage(trayIcon(liveSessions > 0));
  tray.setToolTip(liveSessions > 0 ? `Flightlog: recording ${liveSessions} session${liveSessions === 1 ? '' : 's'}` : 'Flightlog: idle');
}

function notify(title: string, body: string): boolean {
  if (!Notification.isSupported()) return false;
  new Notification({ title, body, silent: true }).show();
  return true;
}

/**
 * Opens a bundle with `flightlog open FILE` (a read-only viewer gateway) in its own window,
 * once it prints its UI URL.
 */
function openBundle(file: string): void {
  if (!file.toLowerCase().endsWith(BUNDLE_EXT)) {
    void dialog.showMessageBox({ type: 'error', message: `Not a Flightlog bundle: ${path.basename(file)}` });
    return;
  }
  const child = spawn(process.execPath, [CLI, 'open', file], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let win: BrowserWindow | null = null;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    if (win) return;
    out += d;
    const m = /(http:\/\/127\.0\.0\.1:\d+\/#token=\S+)/.exec(out);
    if (!m) return;
    const origin = originOf(m[1]);
    if (origin) trustedOrigins.add(origin);
    win = createWindow();
    win.setTitle(`Flightlog: ${path.basename(file)}`);
    void win.loadURL(m[1]);
    win.on('closed', () => child.kill('SIGTERM'));
    send(mainWindow, 'bundle:opened', { path: file });
  });
  child.stderr.on('data', (d: string) => {
    err += d;
  });
  child.on('exit', (code) => {
    if (!win && code !== 0) {
      const reason = err.trim().split('\n').pop() ?? `exit ${code}`;
      void dialog.showMessageBox({ type: 'error', message: `Could not open ${path.basename(file)}`, detail: reason });
    }
  });
}

async function openBundleDialog(): Promise<{ path: string } | null> {
  const r = await dialog.showOpenDialog({ title: 'Open a Flightlog bundle', properties: ['openFile'], filters: [{ name: 'Flightlog bundle', extensions: ['flightlog'] }] });
  if (r.canceled || r.filePaths.length === 0) return null;
  openBundle(r.filePaths[0]);
  return { path: r.filePaths[0] };
}

function buildMenu(): void {
  const template: MenuItemConstructorOptions[] = [
    {
      label: 'File',
      submenu: [{ label: 'Open Bundle…', accelerator: 'CmdOrCtrl+O', click: () => void openBundleDialog() }, { type: 'separator' }, { role: 'quit' }],
    },
    { label: 'Edit', submenu: [{ role: 'copy' }, { role: 'selectAll' }] },
    { label: 'View', submenu: [{ role: 'reload' }, { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' }] },
    { label: 'Gateway', submenu: [{ label: 'Restart gateway', click: () => void gateway.restart() }] },
    { label: 'Help', submenu: [{ label: 'About Flightlog', click: () => void dialog.showMessageBox({ message: `Flightlog ${app.getVersion()}`, detail: 'A flight recorder for AI coding agents.' }) }] },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function lockDown(): void {
  session.defaultSession.setPermissionRequestHandler((_wc, permission, cb) => cb(permission === 'clipboard-sanitized-write'));
  session.defaultSession.setPermissionCheckHandler((_wc, permission) => permission === 'clipboard-sanitized-write');
  app.on('web-contents-created', (_e, wc) => {
    wc.setWindowOpenHandler(({ url }) => {
      openExternal(url);
      return { action: 'deny' };
    });
    wc.on('will-navigate', (e, url) => {
      if (trustedOrigins.has(originOf(url) ?? '')) return;
      e.preventDefault();
      // A bundle dropped on the window arrives as a navigation to its file: URL.
      if (url.startsWith('file:') && url.toLowerCase().endsWith(BUNDLE_EXT)) openBundle(decodeURIComponent(new URL(url).pathname));
    });
    wc.on('will-redirect', (e, url) => {
      if (!trustedOrigins.has(originOf(url) ?? '')) e.preventDefault();
    });
    wc.on('will-attach-webview', (e) => e.preventDefault());
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', (_e, argv) => {
    for (const b of parseArgs(argv).bundles) openBundle(b);
    if (mainWindow) {
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.focus();
    }
  });
  // macOS hands files over by event, before or after ready.
  const pending: string[] = [...args.bundles];
  app.on('open-file', (e, file) => {
    e.preventDefault();
    if (app.isReady()) openBundle(file);
    else pending.push(file);
  });
  app.whenReady().then(() => {
    lockDown();
    registerIpc({
      trustedOrigins,
      gateway,
      openBundleDialog,
      notify,
      onLiveCount: (n) => {
        liveSessions = n;
        updateTray();
      },
    });
    buildMenu();
    tray = new Tray(trayIcon(false));
    tray.setContextMenu(Menu.buildFromTemplate([{ label: 'Show Flightlog', click: () => mainWindow?.show() }, { label: 'Quit', role: 'quit' }]));
    updateTray();
    mainWindow = createWindow();
    mainWindow.on('closed', () => {
      mainWindow = null;
    });
    let wasDown = false;
    gateway.on('state', (s: GatewayState) => {
      if (s.state === 'down' && !wasDown) notify('Flightlog gateway is down', s.reason);
      wasDown = s.state === 'down';
      showState(s);
    });
    showState(gateway.state);
    gateway.start();
    for (const b of pending.splice(0)) openBundle(b);
  });
  app.on('window-all-closed', () => app.quit());
  let quitting = false;
  app.on('before-quit', (e) => {
    if (quitting) return;
    // Let the gateway close and seal its open sessions before the process goes.
    e.preventDefault();
    quitting = true;
    void gateway.stop().finally(() => app.quit());
  });
}
