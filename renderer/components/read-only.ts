/** Whether the app shows opened bundles (`flightlog open`) rather than a gateway's live store; set by the shell from /api/status. */
import { useSyncExternalStore } from 'react';

let bundleMode: boolean | null = null;
const subscribers = new Set<() => void>();

export function setBundleMode(on: boolean): void {
  if (bundleMode === on) return;
  bundleMode = on;
  for (const s of subscribers) s();
}

/** null until the status is known, so empty states can wait rather than speak of the wrong thing */
export function useBundleMode(): boolean | null {
  return useSyncExternalStore(
    (cb) => {
      subscribers.add(cb);
      return () => subscribers.delete(cb);
    },
    () => bundleMode,
  );
}
