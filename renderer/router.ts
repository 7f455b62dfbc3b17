/** Hash routes: #/sessions, #/session/ID?cmd=N, #/replay/ID?t=US, #/diffs/ID?a=&b=, #/findings, #/approvals, #/settings?focus=identity|connection|run, #/runs, #/runs/ID, #/blame?target=T&since=ISO. */
import { useEffect, useState } from 'react';

export interface Route {
  view: 'sessions' | 'session' | 'replay' | 'diffs' | 'findings' | 'approvals' | 'settings' | 'runs' | 'blame';
  id: string | null;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const [pathPart, query = ''] = h.split('?', 2);
  const [view, id] = pathPart.split('/');
  const params = new URLSearchParams(query);
  const known = ['sessions', 'session', 'replay', 'diffs', 'findings', 'approvals', 'settings', 'runs', 'blame'] as const;
  const v = (known as readonly string[]).includes(view) ? (view as Route['view']) : 'sessions';
  return { view: v, id: id ? decodeURIComponent(id) : null, params };
}

export function href(view: Route['view'], id?: string | null, params?: Record<string, string | number | null | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== null && v !== undefined && v !== '') qs.set(k, String(v));
  const q = qs.toString();
  return `#/${view}${id ? `/${encodeURIComponent(id)}` : ''}${q ? `?${q}` : ''}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    window.addEventListener('popstate', on);
    return () => {
      window.removeEventListener('hashchange', on);
      window.removeEventListener('popstate', on);
    };
  }, []);
  return route;
}
