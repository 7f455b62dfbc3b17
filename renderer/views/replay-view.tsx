/**
 * Replay: terminal sessions in xterm.js (play/pause, 0.25×–16×, seek bar with command markers,
 * idle skipping, previous/next command); protocol sessions as the command timeline advancing.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { Terminal } from '@xterm/xterm';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';
import type { ReplayIndex } from '../../gateway/common/replay-types';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, StatusPill, useLive } from '../components/common';
import { fmtClock, fmtDuration } from '../format';
import { href, navigate, type Route } from '../router';
import { ReplayPlayer, SPEEDS } from '../replay/player';
import { summary } from './session-view';

export function ReplayView({ route }: { route: Route }) {
  const id = route.id ?? '';
  const [data, setData] = useState<{ session: SessionDetail; index: ReplayIndex } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let cancelled = false;
    setData(null);
    Promise.all([api.session(id), api.replayIndex(id)]).then(
      ([session, index]) => !cancelled && setData({ session, index }),
      (e: unknown) => !cancelled && setError(e),
    );
    return () => {
      cancelled = true;
    };
  }, [id]);
  if (error) return <ErrorLine error={error} />;
  if (!data) return <Empty>indexing the recording…</Empty>;
  return <Player key={`${id}:${route.params.get('t') ?? ''}`} session={data.session} index={data.index} startUs={Number(route.params.get('t') ?? 0)} />;
}

function Player({ session, index, startUs }: { session: SessionDetail; index: ReplayIndex; startUs: number }) {
  const host = useRef<HTMLDivElement>(null);
  const [player, setPlayer] = useState<ReplayPlayer | null>(null);
  const [, setTick] = useState(0);
  const duration = Math.max(index.durationUs, 1);
  const commands = session.commands;
  const markers = useMemo(() => commands.map((c) => c.startUs).sort((a, b) => a - b), [commands]);

  useEffect(() => {
    let term: Terminal | null = null;
    if (index.terminal && host.current) {
      term = new Terminal({
        cols: index.cols,
        rows: index.rows,
        disableStdin: true,
        cursorBlink: false,
        scrollback: 2000,
        fontSize: 13,
        fontFamily: 'ui-monospace, "JetBrains Mono", "DejaVu Sans Mono", monospace',
        theme: { background: '#0b0f14', foreground: '#d6dde6', cursor: '#7aa2f7' },
        // Recorded links stay inert: OSC 8 is filtered out anyway, and activation does nothing.
        linkHandler: { activate: () => undefined, allowNonHttpProtocols: false },
      });
      term.open(host.current);
    }
    const p = new ReplayPlayer(session.id, index, term);
    p.markers = markers;
    // Coalesce the player's changes into at most one render per animation frame.
    let frame = 0;
    const unsub = p.onChange(() => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setTick((t) => t + 1);
      });
    });
    setPlayer(p);
    void p.seek(startUs);
    return () => {
      unsub();
      cancelAnimationFrame(frame);
      p.dispose();
      term?.dispose();
    };
    // one player per session view; startUs only applies on open
  }, [session.id]);

  useLive((msgs) => {
    if (player && session.status === 'live' && msgs.some((m) => m.type === 'events' && m.sessionId === session.id)) {
      api.replayIndex(session.id).then((ix) => player.updateIndex(ix), () => undefined);
    }
  }, 1000);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!player || (e.target instanceof HTMLElement && /INPUT|SELECT|TEXTAREA/.test(e.target.tagName))) return;
      if (e.key === ' ') {
        e.preventDefault();
        if (player.playing) player.pause();
        else player.play();
      } else if (e.key === 'ArrowRight') void player.seek(player.pos + 5_000_000);
      else if (e.key === 'ArrowLeft') void player.seek(player.pos - 5_000_000);
      else if (e.key === 'n') stepCommand(player, markers, 1);
      else if (e.key === 'p') stepCommand(player, markers, -1);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [player, markers]);

  const pos = player?.pos ?? 0;
  const current = currentCommand(commands, pos);
  return (
    <div className="view replay-view">
      <div className="replay-head">
        <a href={href('session', session.id)} className="back">
          ← {session.connection} · {session.identity ?? 'unknown'}
        </a>
        <span className="muted">
          {index.terminal ? `${index.cols}×${index.rows} terminal · ${index.keyframes.length} keyframes` : 'protocol session: the command timeline advances in time'}
        </span>
      </div>
      <div className="replay-stage">
        {index.terminal ? (
          <div className="term-wrap">
            <div ref={host} className="term-host" data-testid="terminal" />
          </div>
        ) : (
          <ProtocolTimeline commands={commands} pos={pos} />
        )}
      </div>
      {player && (
        <Controls player={player} duration={duration} markers={commands} current={current} />
      )}
    </div>
  );
}

function currentCommand(commands: CommandView[], pos: number): CommandView | null {
  let cur: CommandView | null = null;
  for (const c of commands) if (c.startUs <= pos) cur = c;
  return cur;
}

function stepCommand(player: ReplayPlayer, markers: number[], dir: 1 | -1): void {
  const pos = player.target ?? player.pos;
  if (dir > 0) {
    const next = markers.find((m) => m > pos + 1000);
    if (next !== undefined) void player.seek(next);
  } else {
    // Like a player's "previous track": back to the start of the current command, or to the
    // command before it when already (nearly) at that start.
    const started = markers.filter((m) => m <= pos + 1000);
    const current = started[started.length - 1];
    const target = current !== undefined && pos - current > 1_000_000 ? current : started[started.length - 2];
    void player.seek(target ?? markers[0] ?? 0);
  }
}

function Controls({ player, duration, markers, current }: { player: ReplayPlayer; duration: number; markers: CommandView[]; current: CommandView | null }) {
  const bar = useRef<HTMLDivElement>(null);
  const [hover, setHover] = useState<number | null>(null);
  const starts = useMemo(() => markers.map((c) => c.startUs).sort((a, b) => a - b), [markers]);
  const fraction = (e: React.MouseEvent) => {
    const r = bar.current!.getBoundingClientRect();
    return Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  };
  return (
    <div className="controls" data-testid="replay-controls">
      <div
        className="seekbar"
        ref={bar}
        data-testid="seekbar"
        onClick={(e) => void player.seek(fraction(e) * duration)}
        onMouseMove={(e) => setHover(fraction(e) * duration)}
        onMouseLeave={() => setHover(null)}
      >
        <div className="seek-fill" style={{ width: `${(player.pos / duration) * 100}%` }} />
        {markers.map((c) => (
          <div
            key={c.id}
            className={`marker m-${c.status}`}
            style={{ left: `${(c.startUs / duration) * 100}%` }}
            title={`#${c.index} ${c.text.slice(0, 120)}`}
            data-testid="seek-marker"
            onClick={(e) => {
              e.stopPropagation();
              void player.seek(c.startUs);
            }}
          />
        ))}
        {hover !== null && (
          <div className="seek-hover" style={{ left: `${(hover / duration) * 100}%` }}>
            {fmtClock(hover)}
          </div>
        )}
      </div>
      <div className="control-row">
        <button className="btn" onClick={() => stepCommand(player, starts, -1)} title="previous command (p)" data-testid="prev-command">
          <Icon d="M6 5h2v14H6zM20 5v14L9 12z" /> prev
        </button>
        <button className="btn primary" onClick={() => (player.playing ? player.pause() : player.play())} data-testid="play-pause">
          {player.playing ? <><Icon d="M6 5h4v14H6zM14 5h4v14h-4z" /> Pause</> : <><Icon d="M7 5v14l12-7z" /> Play</>}
        </button>
        <button className="btn" onClick={() => stepCommand(player, starts, 1)} title="next command (n)" data-testid="next-command">
          next <Icon d="M16 5h2v14h-2zM4 5l11 7-11 7z" />
        </button>
        <span className="clock mono" data-testid="clock">
          {fmtClock(player.pos)} / {fmtClock(duration)}
        </span>
        <label className="speed">
          speed
          <select value={player.speed} onChange={(e) => player.setSpeed(Number(e.target.value))} data-testid="speed">
            {SPEEDS.map((s) => (
              <option key={s} value={s}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={player.skipIdle} onChange={(e) => player.setSkipIdle(e.target.checked)} data-testid="skip-idle" /> skip idle
        </label>
        <span className="muted seek-ms" data-testid="seek-ms" data-ms={player.lastSeekMs === null ? '' : player.lastSeekMs.toFixed(1)} data-seeks={player.seeks}>
          {player.error ? `seek failed: ${player.error}` : player.seeking ? 'seeking…' : player.lastSeekMs === null ? '' : `seek ${player.lastSeekMs.toFixed(0)} ms`}
        </span>
        <span className="spacer" />
        {current && (
          <a className="current-cmd" href={href('session', current.sessionId, { cmd: current.id })} data-testid="current-command">
            <KindTag kind={current.kind} /> <span className="mono">{current.text.replace(/\s+/g, ' ').slice(0, 80)}</span>
          </a>
        )}
      </div>
    </div>
  );
}

/** A small filled SVG icon: the fonts on a reviewer's machine may lack the media symbols. */
function Icon({ d }: { d: string }) {
  return (
    <svg width="12" height="12" viewBox="0 0 24 24" aria-hidden="true" fill="currentColor">
      <path d={d} />
    </svg>
  );
}

function ProtocolTimeline({ commands, pos }: { commands: CommandView[]; pos: number }) {
  const shown = commands.filter((c) => c.startUs <= pos);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.scrollTo({ top: ref.current.scrollHeight });
  }, [shown.length]);
  return (
    <div className="proto-timeline" ref={ref} data-testid="protocol-timeline">
      {shown.length === 0 && <Empty>Nothing has happened yet at {fmtClock(pos)}.</Empty>}
      {shown.map((c, i) => (
        <div key={c.id} className={`proto-row ${i === shown.length - 1 ? 'current' : ''}`} onClick={() => navigate(href('session', c.sessionId, { cmd: c.id }))}>
          <span className="mono muted">{fmtClock(c.startUs)}</span>
          <KindTag kind={c.kind} />
          <StatusPill status={c.endUs !== null && c.endUs <= pos ? c.status : 'running'} />
          <span className="mono cmd-text">{c.text.replace(/\s+/g, ' ').slice(0, 400)}</span>
          <span className="muted">
            {fmtDuration(c.durationMs)} {summary(c)}
          </span>
        </div>
      ))}
    </div>
  );
}
