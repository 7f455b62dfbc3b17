/**
 * The IPC handlers of Electron main, one per invoke channel of bridge-types.ts, each behind one
 * sender check: the call must come from the top frame of one of our windows showing a trusted
 * origin (the gateway's UI or a bundle viewer). Everything they act on comes in as `IpcDeps`, so
 * tests drive them through a stand-in `electron` module.
 */
import { BrowserWindow, ipcMain, type IpcMainInvokeEvent } from 'electron';
import type { GatewayState, InvokeChannels } from './bridge-types';

export interface IpcDeps {
  /** origins our windows may show; a sender showing anything else is refused */
  trustedOrigins: ReadonlySet<string>;
  gateway: { readonly state: GatewayState; restart(): Promise<void>; setLiveSessions(n: number): void };
  openBundleDialog(): Promise<{ path: string } | null>;
  notify(title: string, body: string): boolean;
  /** the live-session count changed (the tray shows it) */
  onLiveCount(n: number): void;
}

/** Every invoke channel, so a channel added to bridge-types.ts without a handler fails to compile. */
export const INVOKE_CHANNELS: { [C in keyof InvokeChannels]: true } = {
  'gateway:state': true,
  'gateway:restart': true,
  'bundle:open-dialog': true,
  notify: true,
  'recording:live-count': true,
};

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** Why a sender is refused, or null when it may call: one of our windows, its top frame, a trusted origin. */
export function senderRefusal(e: IpcMainInvokeEvent, trustedOrigins: ReadonlySet<string>): string | null {
  if (!BrowserWindow.fromWebContents(e.sender)) return 'not one of our windows';
  const frame = e.senderFrame;
  if (!frame) return 'no sender frame';
  if (frame.parent) return 'a subframe';
  const origin = originOf(frame.url);
  if (!origin || !trustedOrigins.has(origin)) return `an untrusted origin (${origin ?? 'none'})`;
  return null;
}

/** Registers every handler; returns a function that removes them. */
export function registerIpc(deps: IpcDeps): () => void {
  const handle = <C extends keyof InvokeChannels>(
    channel: C,
    fn: (params: InvokeChannels[C]['params']) => InvokeChannels[C]['result'] | Promise<InvokeChannels[C]['result']>,
  ): void => {
    ipcMain.handle(channel, (e, params: InvokeChannels[C]['params']) => {
      if (senderRefusal(e, deps.trustedOrigins)) throw new Error('untrusted sender');
      return fn(params);
    });
  };
  let liveSessions = 0;
  handle('gateway:state', () => deps.gateway.state);
  handle('gateway:restart', async () => {
    await deps.gateway.restart();
    return deps.gateway.state;
  });
  handle('bundle:open-dialog', () => deps.openBundleDialog());
  // the renderer's words are data: coerced to short strings whatever it sends
  handle('notify', (p) => deps.notify(String(p?.title).slice(0, 200), String(p?.body).slice(0, 1000)));
  handle('recording:live-count', (p) => {
    const n = Math.max(0, Math.floor(Number(p?.liveSessions) || 0));
    if (n > 0 && liveSessions === 0) deps.notify('Flightlog is recording', `${n} live session${n === 1 ? '' : 's'}`);
    liveSessions = n;
    deps.gateway.setLiveSessions(n);
    deps.onLiveCount(n);
    return null;
  });
  return () => {
    for (const channel of Object.keys(INVOKE_CHANNELS)) ipcMain.removeHandler(channel);
  };
}
