/**
 * A STAND-IN for the `electron` module, because no Electron binary can be fetched on these
 * machines (the npm package's index only points at a binary that is not there). It holds just
 * what main/ touches: ipcMain, BrowserWindow and its webContents, app (ready and quit driven by
 * the test), the default session's permission handlers, shell, dialog, Notification, Menu, Tray,
 * nativeImage, contextBridge and ipcRenderer, wired to each other the way Electron wires them (an
 * invoke reaches the main handler with an event naming its sender and frame; a renderer listener
 * gets the payload after an event object). Importing this file makes `require('electron')` answer
 * with it. It proves main's logic and wiring, not Electron's own behaviour; the real shell runs
 * wherever a binary is.
 */
import Module from 'node:module';
import { EventEmitter } from 'node:events';

export interface StandInFrame {
  url: string;
  parent: StandInFrame | null;
}

export interface StandInWebContents {
  id: number;
  /** the frame the next invoke comes from (the top frame unless a test says otherwise) */
  frame: StandInFrame | null;
}

type Handler = (e: { sender: StandInWebContents; senderFrame: StandInFrame | null }, params: unknown) => unknown;

const handlers = new Map<string, Handler>();
const windows = new Map<StandInWebContents, StandInWindow>();
const rendererEvents = new EventEmitter();
let nextId = 1;

/** webContents as main.ts uses it: its URL, send, and the navigation events lockDown() hooks. */
export class StandInWebContentsImpl extends EventEmitter implements StandInWebContents {
  readonly id = nextId++;
  frame: StandInFrame | null;
  /** what main sent this window (webContents.send), in order */
  readonly sent: Array<[string, unknown]> = [];
  windowOpenHandler: ((d: { url: string }) => { action: string }) | null = null;
  constructor(url: string) {
    super();
    this.frame = { url, parent: null };
  }
  getURL(): string {
    return this.frame?.url ?? '';
  }
  send(channel: string, payload: unknown): void {
    this.sent.push([channel, structuredClone(payload)]);
  }
  setWindowOpenHandler(fn: (d: { url: string }) => { action: string }): void {
    this.windowOpenHandler = fn;
  }
  /** A navigation as Chromium starts it: true when main let it happen. */
  navigate(url: string): boolean {
    let prevented = false;
    this.emit('will-navigate', { preventDefault: () => (prevented = true) }, url);
    if (!prevented && this.frame) this.frame.url = url;
    return !prevented;
  }
}

export class StandInWindow extends EventEmitter {
  static readonly all: StandInWindow[] = [];
  readonly webContents: StandInWebContentsImpl;
  readonly options: Record<string, unknown>;
  readonly loaded: string[] = [];
  title = '';
  private destroyed = false;
  constructor(arg: string | Record<string, unknown> = 'about:blank') {
    super();
    this.options = typeof arg === 'string' ? {} : arg;
    this.webContents = new StandInWebContentsImpl(typeof arg === 'string' ? arg : 'about:blank');
    windows.set(this.webContents, this);
    StandInWindow.all.push(this);
    app.emit('web-contents-created', {}, this.webContents);
  }
  static fromWebContents(wc: StandInWebContents): StandInWindow | null {
    return windows.get(wc) ?? null;
  }
  async loadURL(url: string): Promise<void> {
    this.loaded.push(url);
    if (this.webContents.frame) this.webContents.frame.url = url;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
    windows.delete(this.webContents);
    this.emit('closed');
  }
  show(): void {}
  focus(): void {}
  restore(): void {}
  isMinimized(): boolean {
    return false;
  }
  setTitle(t: string): void {
    this.title = t;
  }
}

/** app: ready when a test says so; quit() runs before-quit as Electron does (a listener may prevent it). */
class StandInApp extends EventEmitter {
  isPackaged = false;
  quitCalls = 0;
  quitted = false;
  private readyFlag = false;
  private readyResolve!: () => void;
  private readonly readyPromise = new Promise<void>((r) => (this.readyResolve = r));
  requestSingleInstanceLock(): boolean {
    return true;
  }
  whenReady(): Promise<void> {
    return this.readyPromise;
  }
  isReady(): boolean {
    return this.readyFlag;
  }
  /** Test control: Electron finished starting. */
  becomeReady(): void {
    this.readyFlag = true;
    this.readyResolve();
  }
  getVersion(): string {
    return '0.0.0-stand-in';
  }
  quit(): void {
    this.quitCalls++;
    let prevented = false;
    this.emit('before-quit', { preventDefault: () => (prevented = true) });
    if (!prevented) this.quitted = true;
  }
}
export const app = new StandInApp();

/** Permission handlers main installs on the default session. */
export const permissions: { request: ((wc: unknown, p: string, cb: (ok: boolean) => void) => void) | null; check: ((wc: unknown, p: string) => boolean) | null } = { request: null, check: null };
export const opened: string[] = [];
export const notifications: Array<{ title: string; body: string }> = [];

/** What the preload exposed with contextBridge.exposeInMainWorld, by name. */
export const exposed = new Map<string, unknown>();

/** The renderer that ipcRenderer.invoke speaks for (set by a test). */
let currentSender: StandInWebContents = { id: 0, frame: null };
export function speakAs(wc: StandInWebContents): void {
  currentSender = wc;
}

export const electron = {
  ipcMain: {
    handle(channel: string, fn: Handler): void {
      if (handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
      handlers.set(channel, fn);
    },
    removeHandler(channel: string): void {
      handlers.delete(channel);
    },
  },
  BrowserWindow: StandInWindow,
  app,
  session: {
    defaultSession: {
      setPermissionRequestHandler(fn: typeof permissions.request): void {
        permissions.request = fn;
      },
      setPermissionCheckHandler(fn: typeof permissions.check): void {
        permissions.check = fn;
      },
    },
  },
  shell: {
    async openExternal(url: string): Promise<void> {
      opened.push(url);
    },
  },
  dialog: {
    async showMessageBox(): Promise<{ response: number }> {
      return { response: 0 };
    },
    async showOpenDialog(): Promise<{ canceled: boolean; filePaths: string[] }> {
      return { canceled: true, filePaths: [] };
    },
  },
  Notification: class {
    static isSupported(): boolean {
      return true;
    }
    constructor(private readonly o: { title: string; body: string }) {}
    show(): void {
      notifications.push({ title: this.o.title, body: this.o.body });
    }
  },
  Menu: {
    menu: null as unknown,
    buildFromTemplate(t: unknown): unknown {
      return { template: t };
    },
    setApplicationMenu(m: unknown): void {
      electron.Menu.menu = m;
    },
  },
  Tray: class {
    image: unknown = null;
    tooltip = '';
    constructor(image: unknown) {
      this.image = image;
    }
    setImage(i: unknown): void {
      this.image = i;
    }
    setToolTip(t: string): void {
      this.tooltip = t;
    }
    setContextMenu(): void {}
  },
  nativeImage: {
    createFromBitmap(buf: Buffer, size: { width: number; height: number }): unknown {
      return { bitmap: buf, ...size };
    },
  },
  contextBridge: {
    exposeInMainWorld(name: string, api: unknown): void {
      exposed.set(name, api);
    },
  },
  ipcRenderer: {
    async invoke(channel: string, params: unknown): Promise<unknown> {
      const h = handlers.get(channel);
      if (!h) throw new Error(`No handler registered for '${channel}'`);
      // structured clone, as Electron's IPC does: no functions or prototypes cross
      return structuredClone(await h({ sender: currentSender, senderFrame: currentSender.frame }, structuredClone(params)));
    },
    on(channel: string, fn: (...args: unknown[]) => void): void {
      rendererEvents.on(channel, fn);
    },
    removeListener(channel: string, fn: (...args: unknown[]) => void): void {
      rendererEvents.removeListener(channel, fn);
    },
  },
};

/** Main → renderer, as webContents.send delivers it: an event object first, then the payload. */
export function sendToRenderer(channel: string, payload: unknown): void {
  rendererEvents.emit(channel, { sender: 'ipc-renderer-event' }, structuredClone(payload));
}

export function rendererListeners(channel: string): number {
  return rendererEvents.listenerCount(channel);
}

/** Calls a main handler directly with the sender a test builds (a subframe, an unknown window…). */
export function invokeAs(sender: StandInWebContents, senderFrame: StandInFrame | null, channel: string, params: unknown): Promise<unknown> {
  const h = handlers.get(channel);
  if (!h) return Promise.reject(new Error(`No handler registered for '${channel}'`));
  return Promise.resolve().then(() => h({ sender, senderFrame }, params));
}

export function registeredChannels(): string[] {
  return [...handlers.keys()].sort();
}

const M = Module as unknown as { _load(request: string, parent: unknown, isMain: boolean): unknown };
const load = M._load;
M._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  if (request === 'electron') return electron;
  return load.call(this, request, parent, isMain);
};
