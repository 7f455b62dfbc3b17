/**
 * The preload bridge as the renderer sees it (Electron only; absent in a browser). Type-only
 * import of main/'s contract keeps one definition of the channel shapes.
 */
import type { FlightlogBridge } from '../main/bridge-types';

declare global {
  interface Window {
    flightlog?: FlightlogBridge;
  }
}

export function bridge(): FlightlogBridge | null {
  return typeof window !== 'undefined' && window.flightlog ? window.flightlog : null;
}
