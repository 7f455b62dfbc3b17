/**
 * The one typed contract between Electron main and the renderer: IPC channel → request and
 * result, and the small object the preload exposes as `window.flightlog`. Pure types.
 */

/** The gateway child process as the shell sees it. */
export type GatewayState =
  | { state: 'starting' }
  | { state: 'ready'; url: string; liveSessions: number }
  | { state: 'down'; reason: string; restartInMs: number | null };

/** invoke channels: renderer → main, answered once */
export interface InvokeChannels {
  'gateway:state': { params: null; result: GatewayState };
  'gateway:restart': { params: null; result: GatewayState };
  'bundle:open-dialog': { params: null; result: { path: string } | null };
  'notify': { params: { title: string; body: string }; result: boolean };
  'recording:live-count': { params: { liveSessions: number }; result: null };
}

/** event channels: main → renderer */
export interface EventChannels {
  'gateway:state': GatewayState;
  'bundle:opened': { path: string };
}

/** What `window.flightlog` holds. Every `on…` returns an unsubscribe function. */
export interface FlightlogBridge {
  readonly platform: string;
  gatewayState(): Promise<GatewayState>;
  restartGateway(): Promise<GatewayState>;
  openBundleDialog(): Promise<{ path: string } | null>;
  notify(title: string, body: string): Promise<boolean>;
  setLiveCount(liveSessions: number): Promise<null>;
  onGatewayState(fn: (s: GatewayState) => void): () => void;
  onBundleOpened(fn: (b: { path: string }) => void): () => void;
}
