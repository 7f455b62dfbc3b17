/** Small shared pieces: status pills, badges, empty and error states, a text block. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { LiveMessage } from '../../gateway/common/api-types';
import { live } from '../api';

export function StatusPill({ status }: { status: string }) {
  return <span className={`pill pill-${status}`}>{status}</span>;
}

export function KindTag({ kind }: { kind: string }) {
  return <span className={`kind kind-${kind}`}>{kind}</span>;
}

export function LiveBadge() {
  return (
    <span className="live-badge" data-testid="live-badge">
      <span className="live-dot" />
      LIVE
    </span>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  return <div className="error-line">{error instanceof Error ? error.message : String(error)}</div>;
}

/** Recorded text shown as text (never markup), in a scrollable monospace block. */
export function TextBlock({ text, className, testId }: { text: string; className?: string; testId?: string }) {
  return (
    <pre className={`text-block ${className ?? ''}`} data-testid={testId}>
      {text}
    </pre>
  );
}

/** Subscribes to the live feed; `fn` runs at most once per `throttleMs` with the messages since. */
export function useLive(fn: (msgs: LiveMessage[]) => void, throttleMs = 400): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    let pending: LiveMessage[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const unsub = live.subscribe((m) => {
      pending.push(m);
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        const batch = pending;
        pending = [];
        ref.current(batch);
      }, throttleMs);
    });
    return () => {
      unsub();
      if (timer) clearTimeout(timer);
    };
  }, [throttleMs]);
}

/** Runs an async loader, keeping its value, error and a reload function. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { value: T | null; error: unknown; reload: () => void; loading: boolean } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    load().then(
      (v) => {
        if (cancelled) return;
        setValue(v);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (cancelled) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [...deps, tick]);
  return { value, error, loading, reload: () => setTick((t) => t + 1) };
}
