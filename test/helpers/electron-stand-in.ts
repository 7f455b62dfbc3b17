/**
 * A STAND-IN for the `electron` module, because no Electron binary can be fetched on these
 * machines (the npm package's index only points at a binary that is not there). It holds just
 * what main/ipc.ts and main/preload.ts touch: ipcMain.handle/removeHandler,
 * BrowserWindow.fromWebContents, contextBridge.exposeInMainWorld and ipcRenderer.invoke/on/
 * removeListener, wired to each other the way Electron wires them (an invoke reaches the main
 * handler with an event naming its sender and frame; the event is not the renderer's to see).
 * Importing this file makes `require('electron')` answer with it. It proves the handlers' logic
 * and the preload's shape, not Electron's own behaviour; the real shell runs wherever a binary is.
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

export class StandInWindow {
  readonly webContents: StandInWebContents;
  constructor(url: string) {
    this.webContents = { id: nextId++, frame: { url, parent: null } };
    windows.set(this.webContents, this);
  }
  static fromWebContents(wc: StandInWebContents): StandInWindow | null {
    return windows.get(wc) ?? null;
  }
  destroy(): void {
    windows.delete(this.webContents);
  }
}

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
