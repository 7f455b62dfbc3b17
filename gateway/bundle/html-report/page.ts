/**
 * The one-file HTML report's page: reads the bundle members embedded in the document, verifies
 * them with WebCrypto, and shows the run's timeline, commands with their results, findings and a
 * terminal replay. Built by scripts/build-renderer.js into dist/renderer/html-report.{js,css},
 * which the exporter (gateway/bundle/html-report.ts) inlines under a hash/nonce CSP.
 */
import '@xterm/xterm/css/xterm.css';
import './page.css';
import { Terminal } from '@xterm/xterm';
import { el, jsonText } from './dom';
import { readEmbeddedMembers, type EmbeddedMember } from './members';
import { verifyEmbedded, type PageVerdict } from './verify-page';

interface SessionInfo {
  id: string;
  protocol?: string;
  connection?: string;
  identity?: string | null;
  run?: string | null;
  startedAt?: string;
  endedAt?: string | null;
  status?: string;
  eventCount?: number;
}

interface CommandInfo {
  id: number;
  sessionId: string;
  index: number;
  kind: string;
  text: string;
  classification?: string | null;
  targets?: string[];
  status: string;
  startedAt: string;
  durationMs?: number | null;
  startSeq?: number | null;
  endSeq?: number | null;
  result?: unknown;
  error?: string | null;
  causedBy?: number | null;
  caused?: number[];
}

interface FindingInfo {
  id: number;
  sessionId: string;
  commandId: number | null;
  eventSeq: number | null;
  category: string;
  kind: string;
  fp?: string | null;
  direction?: string;
  seenByAgent?: boolean;
  detail?: unknown;
  createdAt?: string;
}

interface RunInfo {
  id: string;
  identity: string | null;
  argv: unknown;
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
}

interface EventInfo {
  seq: number;
  t_us: number;
  kind: string;
  data: string;
}

function parse<T>(text: string | undefined, fallback: T): T {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function clock(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').slice(0, 23) : '';
}

/** xterm's DOM renderer injects <style> elements; the CSP admits them only with the page's nonce. */
function admitXtermStyles(): void {
  const nonce = document.querySelector<HTMLStyleElement>('style[nonce]')?.nonce ?? '';
  const create = document.createElement.bind(document);
  document.createElement = ((tag: string, options?: ElementCreationOptions) => {
    const e = create(tag, options);
    if (tag.toLowerCase() === 'style') (e as HTMLStyleElement).nonce = nonce;
    return e;
  }) as typeof document.createElement;
}

function resultSummary(c: CommandInfo): string {
  if (c.error) return c.error;
  const r = c.result as Record<string, unknown> | null | undefined;
  if (!r || typeof r !== 'object') return '';
  const bits: string[] = [];
  if (typeof r.tag === 'string') bits.push(r.tag);
  else if (typeof r.rowCount === 'number') bits.push(`${r.rowCount} rows`);
  if (typeof r.status === 'number') bits.push(`HTTP ${r.status}`);
  if (typeof r.exitCode === 'number') bits.push(`exit ${r.exitCode}`);
  return bits.join(' · ');
}

class Report {
  private readonly members: EmbeddedMember[];
  private readonly text = new Map<string, string>();
  private readonly sessions: SessionInfo[] = [];
  private readonly commands: CommandInfo[] = [];
  private readonly findings: FindingInfo[] = [];
  private readonly runs: RunInfo[];
  private readonly verdictBox = el('div', { class: 'verdict pending', id: 'verdict', 'data-state': 'pending' }, 'verifying in this page…');

  constructor() {
    this.members = readEmbeddedMembers(document);
    for (const m of this.members) this.text.set(m.name, m.text);
    const manifest = parse<{ sessions?: Array<{ id: string }> }>(this.text.get('manifest.json'), {});
    for (const s of manifest.sessions ?? []) {
      if (typeof s?.id !== 'string') continue;
      this.sessions.push({ ...parse<Partial<SessionInfo>>(this.text.get(`sessions/${s.id}/session.json`), {}), id: s.id });
      this.commands.push(...parse<CommandInfo[]>(this.text.get(`sessions/${s.id}/commands.json`), []).filter((c) => c && typeof c === 'object'));
      this.findings.push(...parse<FindingInfo[]>(this.text.get(`sessions/${s.id}/findings.json`), []).filter((f) => f && typeof f === 'object'));
    }
    this.runs = parse<RunInfo[]>(this.text.get('runs.json'), []);
    this.commands.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id - b.id));
  }

  render(root: HTMLElement): void {
    const runLabel = this.runs.length ? `run ${this.runs.map((r) => r.id).join(', ')}` : `${this.sessions.length} session${this.sessions.length === 1 ? '' : 's'}`;
    document.title = `Flightlog report: ${runLabel}`;
    root.append(
      el('h1', {}, `Flightlog report: ${runLabel}`),
      this.verdictBox,
      el('p', { class: 'muted' }, 'Everything below is read from the bundle members embedded in this file (masked at recording). The check above runs in this page: the signature over manifest.json, every member\u2019s SHA-256, every session\u2019s hash chain and seal. Compare the fingerprint with the sender\u2019s gateway key (flightlog trust list).'),
      this.runsSection(),
      this.sessionsSection(),
      this.timelineSection(),
      this.findingsSection(),
      this.replaySection(),
    );
  }

  private runsSection(): HTMLElement {
    if (this.runs.length === 0) return el('section');
    return el(
      'section',
      { id: 'runs' },
      el('h2', {}, 'Run'),
      el(
        'table',
        {},
        el('tr', {}, ...['run', 'identity', 'command', 'started', 'ended', 'exit'].map((h) => el('th', {}, h))),
        ...this.runs.map((r) =>
          el('tr', {}, el('td', {}, r.id), el('td', {}, r.identity ?? ''), el('td', { class: 'text' }, Array.isArray(r.argv) ? r.argv.map(String).join(' ') : jsonText(r.argv)), el('td', {}, clock(r.startedAt)), el('td', {}, clock(r.endedAt)), el('td', {}, r.exitCode === null ? '' : String(r.exitCode))),
        ),
      ),
    );
  }

  private sessionsSection(): HTMLElement {
    return el(
      'section',
      { id: 'sessions' },
      el('h2', {}, 'Sessions'),
      el(
        'table',
        {},
        el('tr', {}, ...['session', 'protocol', 'connection', 'identity', 'started', 'status', 'events', 'commands', 'findings'].map((h) => el('th', {}, h))),
        ...this.sessions.map((s) =>
          el(
            'tr',
            { id: `session-${s.id}` },
            el('td', {}, s.id),
            el('td', {}, s.protocol ?? ''),
            el('td', {}, s.connection ?? ''),
            el('td', {}, s.identity ?? ''),
            el('td', {}, clock(s.startedAt)),
            el('td', {}, s.status ?? ''),
            el('td', {}, String(s.eventCount ?? '')),
            el('td', {}, String(this.commands.filter((c) => c.sessionId === s.id).length)),
            el('td', {}, String(this.findings.filter((f) => f.sessionId === s.id).length)),
          ),
        ),
      ),
    );
  }

  private sessionLabel(id: string): string {
    const s = this.sessions.find((x) => x.id === id);
    return s ? `${s.protocol ?? ''} · ${s.connection ?? ''}` : id;
  }

  private timelineSection(): HTMLElement {
    const rows: HTMLElement[] = [el('tr', {}, ...['time', 'session', 'step', 'kind', 'status', 'command', 'result'].map((h) => el('th', {}, h)))];
    for (const c of this.commands) {
      const findings = this.findings.filter((f) => f.commandId === c.id);
      const details = el(
        'details',
        {},
        el('summary', {}, 'details'),
        c.targets?.length ? el('div', {}, 'targets: ', c.targets.join(', ')) : null,
        c.causedBy ? el('div', {}, 'caused by ', el('a', { href: `#cmd-${c.causedBy}` }, `command ${c.causedBy}`)) : null,
        c.caused?.length ? el('div', {}, 'caused ', ...c.caused.flatMap((id, i) => [i ? ', ' : '', el('a', { href: `#cmd-${id}` }, `command ${id}`)])) : null,
        c.result !== undefined && c.result !== null ? el('pre', { class: 'result' }, jsonText(c.result)) : null,
      );
      rows.push(
        el(
          'tr',
          { id: `cmd-${c.id}`, class: `command status-${c.status}`, 'data-session': c.sessionId },
          el('td', {}, clock(c.startedAt)),
          el('td', {}, el('a', { href: `#session-${c.sessionId}` }, this.sessionLabel(c.sessionId))),
          el('td', {}, `#${c.index}`),
          el('td', {}, el('span', { class: 'tag' }, c.kind), c.classification ? el('span', { class: 'tag' }, c.classification) : null),
          el('td', {}, c.status),
          el('td', { class: 'text' }, c.text, details),
          el('td', { class: 'text' }, resultSummary(c)),
        ),
      );
      for (const f of findings) {
        rows.push(el('tr', { class: 'finding' }, el('td', {}, ''), el('td', {}, ''), el('td', {}, ''), el('td', {}, el('span', { class: 'tag' }, 'finding')), el('td', {}, f.category), el('td', { class: 'text', colspan: '2' }, `${f.kind}${f.fp ? ` (${f.fp})` : ''}${f.detail ? ` ${jsonText(f.detail, 400)}` : ''}`)));
      }
    }
    return el('section', { id: 'timeline' }, el('h2', {}, `Timeline: ${this.commands.length} command${this.commands.length === 1 ? '' : 's'}`), el('table', {}, ...rows));
  }

  private findingsSection(): HTMLElement {
    return el(
      'section',
      { id: 'findings' },
      el('h2', {}, `Findings (${this.findings.length})`),
      this.findings.length === 0
        ? el('p', { class: 'muted' }, 'No findings in this bundle.')
        : el(
            'table',
            {},
            el('tr', {}, ...['when', 'session', 'category', 'kind', 'fingerprint', 'direction', 'command', 'detail'].map((h) => el('th', {}, h))),
            ...this.findings.map((f) => {
              const c = this.commands.find((x) => x.id === f.commandId);
              return el(
                'tr',
                { class: 'finding-row' },
                el('td', {}, clock(f.createdAt)),
                el('td', {}, this.sessionLabel(f.sessionId)),
                el('td', {}, f.category),
                el('td', {}, f.kind),
                el('td', {}, f.fp ?? ''),
                el('td', {}, `${f.direction ?? ''}${f.seenByAgent ? ' (seen by the agent)' : ''}`),
                el('td', {}, c ? el('a', { href: `#cmd-${c.id}` }, `#${c.index}`) : ''),
                el('td', { class: 'text' }, f.detail ? jsonText(f.detail, 2000) : ''),
              );
            }),
          ),
    );
  }

  private replaySection(): HTMLElement {
    const section = el('section', { id: 'replay' }, el('h2', {}, 'Terminal replay'));
    let any = false;
    for (const s of this.sessions) {
      const events = this.terminalEvents(s.id);
      if (!events.some((e) => e.kind === 'o' || e.kind === 'e')) continue;
      any = true;
      section.append(new Player(s.id, this.sessionLabel(s.id), events).element);
    }
    if (!any) section.append(el('p', { class: 'muted' }, 'No terminal sessions in this bundle.'));
    return section;
  }

  private terminalEvents(id: string): EventInfo[] {
    const text = this.text.get(`sessions/${id}/events.ndjson`) ?? '';
    const out: EventInfo[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      const e = parse<EventInfo | null>(line, null);
      if (e && ['pty', 'o', 'e', 'r'].includes(e.kind) && typeof e.data === 'string') out.push(e);
    }
    return out;
  }

  async verify(): Promise<void> {
    const v: PageVerdict = await verifyEmbedded(this.members);
    this.verdictBox.className = `verdict ${v.ok ? 'ok' : 'bad'}`;
    this.verdictBox.setAttribute('data-state', v.ok ? 'verified' : 'failed');
    this.verdictBox.textContent = v.ok ? `\u2714 ${v.message}` : `\u2716 ${v.message}`;
    if (!v.ok) document.title = `NOT VERIFIED \u2014 ${document.title}`;
    const p = v.problem;
    if (p?.session) {
      document.getElementById(`session-${p.session}`)?.classList.add('bad-event');
      if (p.seq !== null) {
        const seq = p.seq;
        const c = this.commands.find((x) => x.sessionId === p.session && x.startSeq != null && x.startSeq <= seq && (x.endSeq ?? x.startSeq) >= seq);
        if (c) document.getElementById(`cmd-${c.id}`)?.classList.add('bad-event');
      }
    }
  }
}

/** Plays a session's terminal output into xterm at recorded pace (long pauses shortened). */
class Player {
  readonly element: HTMLElement;
  private readonly state = el('span', { class: 'muted state' }, 'stopped');
  private readonly host = el('div', { class: 'term' });
  private term: Terminal | null = null;
  private timer: number | undefined;
  private speed = 1;

  constructor(
    private readonly sessionId: string,
    label: string,
    private readonly events: EventInfo[],
  ) {
    const play = el('button', { type: 'button', class: 'play' }, 'Play');
    play.addEventListener('click', () => this.play());
    const speed = el('select', { 'aria-label': 'speed' }, ...['1', '2', '5', '20'].map((x) => el('option', { value: x }, `${x}×`)));
    speed.addEventListener('change', () => (this.speed = Number(speed.value) || 1));
    this.element = el('div', { class: 'replay', 'data-session': sessionId, 'data-state': 'stopped' }, el('div', { class: 'controls' }, el('strong', {}, `${label} (${sessionId})`), play, speed, this.state), this.host);
  }

  private setState(s: 'playing' | 'done' | 'stopped'): void {
    this.element.setAttribute('data-state', s);
    this.state.textContent = s;
  }

  play(): void {
    window.clearTimeout(this.timer);
    const pty = this.events.find((e) => e.kind === 'pty');
    const size = parse<{ cols?: number; rows?: number }>(pty?.data, {});
    const cols = Number.isInteger(size.cols) && size.cols! > 0 && size.cols! < 1000 ? size.cols! : 80;
    const rows = Number.isInteger(size.rows) && size.rows! > 0 && size.rows! < 1000 ? size.rows! : 24;
    if (!this.term) {
      this.term = new Terminal({ cols, rows, disableStdin: true, convertEol: !pty, scrollback: 5000 });
      this.term.open(this.host);
    } else {
      this.term.reset();
      this.term.resize(cols, rows);
    }
    const term = this.term;
    this.setState('playing');
    let i = 0;
    let last = this.events[0]?.t_us ?? 0;
    const step = (): void => {
      while (i < this.events.length) {
        const e = this.events[i];
        const wait = Math.min(Math.max(0, e.t_us - last) / 1000, 1000) / this.speed;
        if (wait > 4) {
          last = e.t_us;
          this.timer = window.setTimeout(step, wait);
          return;
        }
        last = e.t_us;
        i++;
        const d = parse<unknown>(e.data, null);
        if ((e.kind === 'o' || e.kind === 'e') && typeof d === 'string') term.write(d);
        else if (e.kind === 'r' && typeof d === 'string' && /^\d{1,4}x\d{1,4}$/.test(d)) {
          const [c, r] = d.split('x').map(Number);
          if (c > 0 && r > 0) term.resize(c, r);
        }
      }
      term.write('', () => this.setState('done'));
    };
    step();
  }
}

function main(): void {
  admitXtermStyles();
  const root = document.getElementById('report') ?? document.body;
  const report = new Report();
  report.render(root);
  void report.verify();
}

main();
