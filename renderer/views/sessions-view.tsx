/** Sessions: live and past, paged from the API into a virtualised list, sorted by any column (newest first by default); filters, a run filter and full-text search. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { SearchHit, SessionSortKey, SessionSummary } from '../../gateway/common/api-types';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, LiveBadge, StatusPill, useLive } from '../components/common';
import { useBundleMode } from '../components/read-only';
import { VirtualList } from '../components/virtual-list';
import { fmtDuration, fmtTime, shortId } from '../format';
import { href, navigate, type Route } from '../router';

const PAGE = 100;
const ROW = 38;

interface Filters {
  identity: string;
  connection: string;
  protocol: string;
  status: string;
  run: string;
  sort: string;
  order: string;
}

function filtersOf(route: Route): Filters {
  const p = route.params;
  return {
    identity: p.get('identity') ?? '',
    connection: p.get('connection') ?? '',
    protocol: p.get('protocol') ?? '',
    status: p.get('status') ?? '',
    run: p.get('run') ?? '',
    sort: p.get('sort') ?? '',
    order: p.get('order') ?? '',
  };
}

/** The list's columns: header text, sort key, cell class. */
const COLUMNS: Array<{ label: string; key: SessionSortKey; className: string }> = [
  { label: 'status', key: 'status', className: 'c-status' },
  { label: 'started', key: 'started', className: 'c-start' },
  { label: 'identity', key: 'identity', className: 'c-ident' },
  { label: 'connection', key: 'connection', className: 'c-conn' },
  { label: 'protocol', key: 'protocol', className: 'c-proto' },
  { label: 'run', key: 'run', className: 'c-run' },
  { label: 'duration', key: 'duration', className: 'c-dur' },
  { label: 'commands', key: 'commands', className: 'c-num' },
  { label: 'findings', key: 'findings', className: 'c-num' },
  { label: 'session', key: 'session', className: 'c-id' },
];

export function SessionsView({ route }: { route: Route }) {
  const filters = filtersOf(route);
  const q = route.params.get('q') ?? '';
  const setParam = (k: string, v: string) => {
    const next = { ...filters, q, [k]: v };
    navigate(href('sessions', null, next), true);
  };
  return (
    <div className="view sessions-view">
      <div className="toolbar">
        <SearchBox value={q} onChange={(v) => setParam('q', v)} />
        <input className="filter" placeholder="identity" value={filters.identity} onChange={(e) => setParam('identity', e.target.value)} data-testid="filter-identity" />
        <input className="filter" placeholder="connection" value={filters.connection} onChange={(e) => setParam('connection', e.target.value)} data-testid="filter-connection" />
        <select className="filter" value={filters.protocol} onChange={(e) => setParam('protocol', e.target.value)} data-testid="filter-protocol">
          <option value="">all protocols</option>
          <option value="postgres">postgres</option>
          <option value="ssh">ssh</option>
          <option value="http">http</option>
          <option value="kubernetes">kubernetes</option>
        </select>
        <input className="filter" placeholder="run" value={filters.run} onChange={(e) => setParam('run', e.target.value)} data-testid="filter-run" />
        <select className="filter" value={filters.status} onChange={(e) => setParam('status', e.target.value)} data-testid="filter-status">
          <option value="">any status</option>
          <option value="live">live</option>
          <option value="closed">closed</option>
          <option value="failed">failed</option>
          <option value="error">error</option>
        </select>
      </div>
      {q.trim() ? <SearchResults q={q} /> : <SessionList filters={filters} setParams={(p) => navigate(href('sessions', null, { ...filters, q, ...p }), true)} />}
    </div>
  );
}

function SearchBox({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const [text, setText] = useState(value);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => setText(value), [value]);
  return (
    <input
      className="search"
      type="search"
      placeholder="Search every command (SQL, shell, HTTP, model calls)…"
      value={text}
      data-testid="search"
      onChange={(e) => {
        const v = e.target.value;
        setText(v);
        if (timer.current) clearTimeout(timer.current);
        timer.current = setTimeout(() => onChange(v), 250);
      }}
    />
  );
}

function SessionList({ filters, setParams }: { filters: Filters; setParams: (p: Partial<Filters>) => void }) {
  const [pages, setPages] = useState<Map<number, SessionSummary[]>>(new Map());
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const inflight = useRef(new Set<number>());
  const range = useRef<[number, number]>([0, 0]);
  const generation = useRef(0);
  const key = JSON.stringify(filters);

  const fetchPage = useCallback(
    (page: number, gen: number) => {
      if (inflight.current.has(page)) return;
      inflight.current.add(page);
      api
        .sessions({ limit: PAGE, offset: page * PAGE, ...compact(filters) })
        .then((r) => {
          if (gen !== generation.current) return;
          setTotal(r.total);
          setPages((prev) => new Map(prev).set(page, r.sessions));
          setError(null);
        }, setError)
        .finally(() => inflight.current.delete(page));
    },
    [key],
  );

  useEffect(() => {
    generation.current++;
    inflight.current.clear();
    setPages(new Map());
    setTotal(null);
    fetchPage(0, generation.current);
  }, [key, fetchPage]);

  const onRange = useCallback(
    (first: number, last: number) => {
      range.current = [first, last];
      for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) if (!pages.has(p)) fetchPage(p, generation.current);
    },
    [pages, fetchPage],
  );

  // New sessions and status changes: refetch the pages in view (others are dropped and refetched when scrolled to).
  useLive((msgs) => {
    if (!msgs.some((m) => m.type === 'session' || m.type === 'command' || m.type === 'finding')) return;
    const [first, last] = range.current;
    generation.current++;
    const gen = generation.current;
    inflight.current.clear();
    setPages((prev) => {
      const keep = new Map<number, SessionSummary[]>();
      for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
        const v = prev.get(p);
        if (v) keep.set(p, v);
      }
      return keep;
    });
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) fetchPage(p, gen);
  }, 500);

  const renderRow = useCallback(
    (i: number) => {
      const s = pages.get(Math.floor(i / PAGE))?.[i % PAGE];
      if (!s) return <div className="srow loading">…</div>;
      return <SessionRow s={s} onRun={(run) => setParams({ run })} />;
    },
    [pages, key],
  );

  return (
    <div className="list-wrap session-list-wrap" data-testid="session-list-wrap">
      <ErrorLine error={error} />
      <div className="srow shead" role="row">
        {COLUMNS.map((c) => {
          const active = (filters.sort || 'started') === c.key;
          const order = filters.order || (filters.sort ? 'asc' : 'desc');
          // a first click sorts ascending, text and numbers alike; the next one flips it
          const next = active ? (order === 'asc' ? 'desc' : 'asc') : 'asc';
          return (
            <span key={c.key} className={c.className} role="columnheader" aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}>
              <button className={`sort-head ${active ? 'active' : ''}`} onClick={() => setParams({ sort: c.key, order: next })} data-testid={`sort-${c.key}`} title={`sort by ${c.label}`}>
                {c.label}
                <span className="sort-mark" aria-hidden="true">
                  {active ? (order === 'asc' ? '▲' : '▼') : ''}
                </span>
              </button>
            </span>
          );
        })}
      </div>
      {total === 0 ? (
        <SessionsEmpty />
      ) : (
        <VirtualList count={total ?? 0} rowHeight={ROW} renderRow={renderRow} onRange={onRange} testId="session-list" />
      )}
      <div className="list-foot">{total === null ? 'loading…' : `${total.toLocaleString()} session${total === 1 ? '' : 's'}`}</div>
    </div>
  );
}

function compact(f: Filters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v.trim()) out[k] = v.trim();
  return out;
}

function SessionRow({ s, onRun }: { s: SessionSummary; onRun: (run: string) => void }) {
  return (
    <a className="srow" href={href('session', s.id)} data-testid="session-row" data-session={s.id}>
      <span className="c-status">{s.status === 'live' ? <LiveBadge /> : <StatusPill status={s.status} />}</span>
      <span className="c-start">{fmtTime(s.startedAt)}</span>
      <span className="c-ident">{s.identity ?? '—'}</span>
      <span className="c-conn">{s.connection}</span>
      <span className="c-proto">
        <KindTag kind={s.protocol} />
      </span>
      <span className="c-run mono">
        {s.run ? (
          <span
            className="run-link"
            role="link"
            tabIndex={0}
            title={`show only run ${s.run}`}
            data-testid="run-link"
            onClick={(e) => {
              // the row is a link to the session: this one filters instead
              e.preventDefault();
              e.stopPropagation();
              onRun(s.run!);
            }}
            onKeyDown={(e) => {
              if (e.key !== 'Enter') return;
              e.preventDefault();
              e.stopPropagation();
              onRun(s.run!);
            }}
          >
            {shortId(s.run)}
          </span>
        ) : (
          '—'
        )}
        {s.run && (
          <span
            className="run-open"
            role="link"
            tabIndex={0}
            title={`open run ${s.run} as one timeline`}
            data-testid="run-open"
            onClick={(e) => {
              e.preventDefault();
              e.stopPropagation();
              navigate(href('runs', s.run));
            }}
          >
            {' '}
            ↗
          </span>
        )}
      </span>
      <span className="c-dur">{s.status === 'live' ? 'running' : fmtDuration(s.durationMs)}</span>
      <span className="c-num">{s.commandCount}</span>
      <span className={`c-num ${s.findingCount ? 'has-findings' : ''}`}>{s.findingCount}</span>
      <span className="c-id mono">{shortId(s.id)}</span>
    </a>
  );
}

function SearchResults({ q }: { q: string }) {
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let cancelled = false;
    setHits(null);
    api.search(q).then(
      (h) => {
        if (!cancelled) {
          setHits(h);
          setError(null);
        }
      },
      (e: unknown) => !cancelled && setError(e),
    );
    return () => {
      cancelled = true;
    };
  }, [q]);
  const renderRow = useCallback(
    (i: number) => {
      const h = (hits ?? [])[i];
      return (
        <a className="hit" href={href('session', h.sessionId, { cmd: h.commandId })} data-testid="search-hit">
          <span className="hit-meta">
            <KindTag kind={h.kind} /> {h.connection} · {h.identity ?? '—'} · {fmtTime(h.startedAt)}
          </span>
          <span className="hit-text mono">{snippetText(h)}</span>
        </a>
      );
    },
    [hits],
  );
  return (
    <div className="list-wrap">
      <ErrorLine error={error} />
      {hits === null ? (
        <Empty>searching…</Empty>
      ) : hits.length === 0 ? (
        <Empty>No command matches “{q}”.</Empty>
      ) : (
        <VirtualList count={hits.length} rowHeight={54} renderRow={renderRow} testId="search-results" />
      )}
      <div className="list-foot">{hits ? `${hits.length} match${hits.length === 1 ? '' : 'es'}` : ''}</div>
    </div>
  );
}

/** The search snippet as plain text (the API may mark matches; we show text only). */
function snippetText(h: SearchHit): string {
  const s = h.snippet || h.text;
  return s.replace(/\s+/g, ' ').slice(0, 300);
}

function SessionsEmpty() {
  const bundles = useBundleMode();
  if (bundles === null) return <Empty>loading…</Empty>;
  if (bundles) return <Empty>The opened bundles hold no sessions.</Empty>;
  return (
    <Empty>
      No sessions recorded yet. Point an agent at the gateway: <code>flightlog run -- your-agent</code>
    </Empty>
  );
}
