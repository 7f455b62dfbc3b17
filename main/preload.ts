/**
 * The preload bridge: one small typed object on `window.flightlog`, never ipcRenderer itself.
 * Listeners get the payload only (the Electron event is stripped) and get an unsubscribe back.
 * Runs sandboxed: it may require nothing but 'electron'.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { EventChannels, FlightlogBridge, InvokeChannels } from './bridge-types';

function invoke<C extends keyof InvokeChannels>(channel: C, params: InvokeChannels[C]['params']): Promise<InvokeChannels[C]['result']> {
  return ipcRenderer.invoke(channel, params) as Promise<InvokeChannels[C]['result']>;
}

function on<C extends keyof EventChannels>(channel: C, fn: (payload: EventChannels[C]) => void): () => void {
  const listener = (_e: IpcRendererEvent, payload: EventChannels[C]) => fn(payload);
  ipcRenderer.on(channel, listener);
  return () => {
    ipcRenderer.removeListener(channel, listener);
  };
}

const bridge: FlightlogBridge = {
  platform: process.platform,
  gatewayState: () => invoke('gateway:state', null),
  restartGateway: () => invoke('gateway:restart', null),
  openBundleDialog: () => invoke('bundle:open-dialog', null),
  notify: (title, body) => invoke('notify', { title: String(title).slice(0, 200), body: String(body).slice(0, 1000) }),
  setLiveCount: (liveSessions) => invoke('recording:live-count', { liveSessions: Math.max(0, Math.floor(Number(liveSessions) || 0)) }),
  onGatewayState: (fn) => on('gateway:state', fn),
  onBundleOpened: (fn) => on('bundle:opened', fn),
};

contextBridge.exposeInMainWorld('flightlog', bridge);
