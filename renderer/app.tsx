/** The app shell: navigation, gateway status, live feed state, and the routed view. */
import { useEffect, useState } from 'react';
import type { GatewayStatus } from '../gateway/common/api-types';
import { api, live, token, type LiveState } from './api';
import { bridge } from './bridge';
import { useLive } from './components/common';
import { useRoute, href } from './router';
import { SessionsView } from './views/sessions-view';
import { SessionView } from './views/session-view';
import { ReplayView } from './views/replay-view';
import { DiffsView } from './views/diffs-view';
import { FindingsView } from './views/findings-view';
import { Onboarding, SettingsView } from './views/settings-view';
import { BundleBanner } from './components/bundle-trust';
import { ApprovalsView, pendingLine, usePendingApprovals } from './views/approvals-view';
import type { GatewayState } from '../main/bridge-types';
import { RunsView } from './views/runs-view';
import { BlameView } from './views/blame-view';
import { setBundleMode } from './components/read-only';

export function App() {
  const route = useRoute();
  const [status, setStatus] = useState<GatewayStatus | null>(null);
  const [liveState, setLiveState] = useState<LiveState>(live.state);
  const [gw, setGw] = useState<GatewayState | null>(null);
  const pending = usePendingApprovals(token() !== null);
  const waiting = pending.approvals?.length ?? 0;

  useEffect(() => {
    live.start();
    const load = () => api.status().then(setStatus, () => setStatus(null));
    // back from offline (a restarted gateway on the same port): fresh status at once, no reload
    const unsub = live.onState((s) => {
      setLiveState(s);
      if (s === 'live') load();
    });
    load();
    const t = setInterval(load, 10_000);
    window.addEventListener('flightlog-settings-changed', load);
    const b = bridge();
    const unsubGw = b ? b.onGatewayState(setGw) : () => undefined;
    return () => {
      unsub();
      unsubGw();
      clearInterval(t);
      window.removeEventListener('flightlog-settings-changed', load);
    };
  }, []);
  useLive((msgs) => {
    if (msgs.some((m) => m.type === 'session')) api.status().then(setStatus, () => undefined);
  }, 1000);
  useEffect(() => {
    void bridge()?.setLiveCount(status?.liveSessions ?? 0);
  }, [status?.liveSessions]);
  useEffect(() => {
    if (status) setBundleMode(Boolean(status.bundles));
  }, [status]);

  if (!token()) {
    return (
      <div className="no-token">
        <h1>Flightlog</h1>
        <p>This page needs the control API token. Open the URL that <code>flightlog ui</code> printed (it ends in <code>#token=…</code>).</p>
      </div>
    );
  }
  const nav = (view: string, label: string, key: string, badge = 0) => (
    <a className={`nav ${route.view === view || (view === 'sessions' && ['session', 'replay', 'diffs'].includes(route.view)) ? 'active' : ''}`} href={`#/${view}`} data-testid={`nav-${key}`}>
      {label}
      {badge > 0 && (
        <span className="nav-badge" data-testid={`nav-${key}-count`}>
          {badge}
        </span>
      )}
    </a>
  );
  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href={href('sessions')}>
          <span className="brand-mark">◉</span> Flightlog
        </a>
        {nav('sessions', 'Sessions', 'sessions')}
        {nav('findings', 'Findings', 'findings')}
        {nav('runs', 'Runs', 'runs')}
        {nav('blame', 'Blame', 'blame')}
        {!status?.bundles && nav('approvals', 'Approvals', 'approvals', waiting)}
        {!status?.bundles && nav('settings', 'Settings', 'settings')}
        <span className="spacer" />
        {gw && gw.state === 'down' && <span className="gw-down">gateway down: {gw.reason}</span>}
        {status?.bundles ? (
          // a bundle is a finished recording: nothing in it is live, idle or connected
          <span className="status-chip muted" data-testid="read-only-chip" title={status.bundles.map((b) => b.file).join('\n')}>
            read-only · {status.bundles.length} bundle{status.bundles.length === 1 ? '' : 's'} · v{status.version}
          </span>
        ) : (
          <>
          {status && (
            <span className="status-chip" title={status.listeners.map((l) => `${l.connection} (${l.protocol}) ${l.address ?? l.error ?? ''}`).join('\n')}>
              {status.liveSessions > 0 ? (
                <span className="rec">
                  <span className="live-dot" /> recording {status.liveSessions}
                </span>
              ) : (
                <span className="muted">idle</span>
              )}
              <span className="muted">
                · {status.listeners.length} connection{status.listeners.length === 1 ? '' : 's'} · v{status.version}
              </span>
            </span>
          )}
          <span className={`feed feed-${liveState}`} data-testid="feed-state" title="live feed">
            {liveState === 'live' ? '● live' : liveState === 'connecting' ? '○ connecting' : '○ offline'}
          </span>
          </>
        )}
      </header>
      {status?.store && !status.store.ok && (
        <div className="store-banner" role="alert" data-testid="store-banner">
          <b>Recording stopped: the store cannot be written</b> ({status.store.error ?? 'unknown error'}
          {status.store.since ? `, since ${status.store.since}` : ''}). Fail-closed: no new command is forwarded. Free space in the data dir and restart the gateway.
        </div>
      )}
      {waiting > 0 && (
        <a className="approvals-banner" role="status" href="#/approvals" data-testid="approvals-banner">
          {pendingLine(waiting)}
        </a>
      )}
      {status?.bundles && <BundleBanner bundles={status.bundles} onChanged={() => void api.status().then(setStatus, () => undefined)} />}
      <main className="main">
        {route.view === 'sessions' && status && !status.bundles && status.listeners.length === 0 && <Onboarding status={status} />}
        {route.view === 'sessions' && <SessionsView route={route} />}
        {/* keyed by the session: going from one session straight to another starts a fresh view,
            never one still holding (and redirecting back to) the previous session */}
        {route.view === 'session' && <SessionView key={route.id ?? ''} route={route} />}
        {route.view === 'replay' && <ReplayView key={route.id ?? ''} route={route} />}
        {route.view === 'diffs' && <DiffsView key={route.id ?? ''} route={route} />}
        {route.view === 'findings' && <FindingsView route={route} />}
        {route.view === 'approvals' && <ApprovalsView pending={pending} />}
        {route.view === 'settings' && <SettingsView route={route} />}
        {route.view === 'runs' && <RunsView key={route.id ?? ''} route={route} />}
        {route.view === 'blame' && <BlameView route={route} />}
      </main>
    </div>
  );
}
