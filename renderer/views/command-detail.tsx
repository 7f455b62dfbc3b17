/** The detail of one command: SQL with its rows, HTTP exchange, model call as a conversation, shell output, SFTP diff. */
import { useEffect, useState } from 'react';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';
import { api } from '../api';
import { KindTag, StatusPill, TextBlock } from '../components/common';
import { CodeView, DiffView, languageOf } from '../components/monaco';
import { ResultTable } from '../components/result-table';
import { KubeChange } from '../components/kube-change';
import { fmtBytes, fmtDuration, fmtTime, isRecord, prettyJson, stripAnsi } from '../format';
import { stripSystemReminders } from '../../gateway/common/reminders';
import { href } from '../router';
import { causeLabel, isMcpCallOf, McpBody, useCaused } from './mcp-detail';

export function CommandDetail({ command, session }: { command: CommandView; session: SessionDetail }) {
  const c = command;
  return (
    <div className="detail" data-testid="command-detail" data-command={c.id}>
      <div className="detail-head">
        <KindTag kind={c.kind} />
        <StatusPill status={c.status} />
        <span className="muted">#{c.index}</span>
        <span className="muted">{fmtTime(c.startedAt)}</span>
        <span className="muted">{fmtDuration(c.durationMs)}</span>
        {c.classification && <span className="tag">{c.classification}</span>}
        {c.targets.map((t) => (
          <span key={t} className="tag target">
            {t}
          </span>
        ))}
        <span className="spacer" />
        {(session.protocol === 'ssh' || session.protocol === 'kubernetes') && (
          <a className="btn small" href={href('replay', session.id, { t: c.startUs })}>
            ▶ replay from here
          </a>
        )}
        <a className="btn small" href={href('diffs', session.id, { b: c.id })}>
          diff…
        </a>
      </div>
      {c.causedBy !== null && <CausedByLine id={c.causedBy} session={session} />}
      {c.error && <div className="error-line" data-testid="command-error">{c.error}</div>}
      <Body command={c} session={session} />
    </div>
  );
}

function CausedByLine({ id, session }: { id: number; session: SessionDetail }) {
  const local = session.commands.find((x) => x.id === id);
  const [remote, setRemote] = useState<CommandView | null>(null);
  useEffect(() => {
    if (!local) api.command(id).then(setRemote, () => undefined);
  }, [id, local]);
  const c = local ?? remote;
  return (
    <div className="caused-by">
      caused by {causeLabel(c?.kind)}{' '}
      <a href={href('session', c?.sessionId ?? session.id, { cmd: id })} data-testid="caused-by-link">
        {c ? c.text.slice(0, 120) : `#${id}`}
      </a>
    </div>
  );
}

function Body({ command: c, session }: { command: CommandView; session: SessionDetail }) {
  switch (c.kind) {
    case 'sql':
      return <SqlBody c={c} />;
    case 'http':
      return <HttpBody c={c} />;
    case 'llm':
      return <LlmBody c={c} session={session} />;
    case 'shell':
    case 'exec':
      return <ShellBody c={c} session={session} />;
    case 'kubectl':
      return (
        <>
          <ShellBody c={c} session={session} />
          <KubeChange command={c} />
        </>
      );
    case 'sftp':
      return <SftpBody c={c} />;
    case 'mcp':
      return <McpBody c={c} session={session} />;
    default:
      return (
        <>
          <CodeView value={c.text} language="plaintext" />
          <Section title="Result">
            <TextBlock text={prettyJson(c.result)} />
          </Section>
        </>
      );
  }
}

function Section({ title, children, right }: { title: string; children: React.ReactNode; right?: React.ReactNode }) {
  return (
    <section className="section">
      <h3>
        {title}
        {right && <span className="section-right">{right}</span>}
      </h3>
      {children}
    </section>
  );
}

function SqlBody({ c }: { c: CommandView }) {
  const r = isRecord(c.result) ? c.result : {};
  const columns = Array.isArray(r.columns) ? r.columns.map((x) => (isRecord(x) ? String(x.name ?? '') : String(x))) : [];
  const rows = Array.isArray(r.rows) ? r.rows : [];
  const rowCount = typeof r.rowCount === 'number' ? r.rowCount : null;
  return (
    <>
      <CodeView value={c.text} language="pgsql" />
      <Section
        title="Result"
        right={
          <span className="muted" data-testid="sql-summary">
            {typeof r.tag === 'string' ? r.tag : ''}
            {rowCount !== null ? ` · ${rowCount.toLocaleString()} row${rowCount === 1 ? '' : 's'}` : ''}
            {rowCount !== null && rows.length < rowCount ? ` · first ${rows.length} recorded` : ''}
          </span>
        }
      >
        {columns.length > 0 || rows.length > 0 ? <ResultTable columns={columns} rows={rows} /> : <div className="muted">no rows</div>}
      </Section>
      {Array.isArray(r.notices) && r.notices.length > 0 && (
        <Section title="Notices">
          <TextBlock text={prettyJson(r.notices)} />
        </Section>
      )}
      {r.params !== undefined && r.params !== null && (
        <Section title="Parameters">
          <TextBlock text={prettyJson(r.params)} />
        </Section>
      )}
    </>
  );
}

function Headers({ h }: { h: unknown }) {
  if (!isRecord(h) || Object.keys(h).length === 0) return <div className="muted">none</div>;
  return (
    <table className="kv">
      <tbody>
        {Object.entries(h).map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{Array.isArray(v) ? v.join(', ') : String(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function bodyText(b: unknown): { text: string; note: string } {
  if (b === null || b === undefined) return { text: '', note: 'no body' };
  if (typeof b === 'string') return { text: prettyJson(b), note: '' };
  if (!isRecord(b)) return { text: prettyJson(b), note: '' };
  const size = typeof b.size === 'number' ? fmtBytes(b.size) : '';
  const trunc = b.truncated ? ' · truncated' : '';
  if (b.encoding === 'base64') return { text: `(binary, ${size})`, note: `${size}${trunc}` };
  return { text: typeof b.body === 'string' ? prettyJson(b.body) : prettyJson(b.body), note: `${size}${trunc}` };
}

function HttpBody({ c }: { c: CommandView }) {
  const r = isRecord(c.result) ? c.result : {};
  const req = bodyText(r.requestBody);
  const res = bodyText(r.responseBody);
  const timings = isRecord(r.timings) ? r.timings : {};
  return (
    <>
      <div className="http-line mono" data-testid="http-line">
        <span className="method">{String(r.method ?? c.text.split(' ')[0])}</span> {String(r.url ?? c.text)}
        {r.status !== undefined && r.status !== null && <span className={`http-status s${String(r.status)[0]}`}>{String(r.status)}</span>}
        {typeof timings.totalMs === 'number' && <span className="muted"> · {fmtDuration(timings.totalMs)}</span>}
      </div>
      <div className="two-col">
        <Section title="Request" right={<span className="muted">{req.note}</span>}>
          <Headers h={r.requestHeaders} />
          {req.text && <TextBlock text={req.text} testId="http-request-body" />}
        </Section>
        <Section title="Response" right={<span className="muted">{res.note}</span>}>
          <Headers h={r.headers} />
          {res.text && <TextBlock text={res.text} testId="http-response-body" />}
        </Section>
      </div>
    </>
  );
}

// the human's words, not the <system-reminder> blocks an agent injects into the user turn
function turnContent(content: unknown): string {
  if (typeof content === 'string') return stripSystemReminders(content);
  if (Array.isArray(content)) {
    return content
      .map((b) => {
        if (!isRecord(b)) return prettyJson(b);
        if (typeof b.text === 'string') return stripSystemReminders(b.text);
        if (b.type === 'tool_use') return `→ tool ${String(b.name)}(${prettyJson(b.input)})`;
        if (b.type === 'tool_result') return `← tool result: ${turnContent(b.content)}`;
        return prettyJson(b);
      })
      .filter(Boolean)
      .join('\n');
  }
  return prettyJson(content);
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim().toLowerCase();

function LlmBody({ c, session }: { c: CommandView; session: SessionDetail }) {
  const r = isRecord(c.result) ? c.result : {};
  const turns = Array.isArray(r.newTurns) ? r.newTurns : [];
  const toolCalls = Array.isArray(r.toolCalls) ? (r.toolCalls as unknown[]).filter(isRecord) : [];
  const caused = useCaused(c, session);
  // Link each caused command to the tool call whose arguments contain its text.
  const linked = new Set<number>();
  const byCall = toolCalls.map((t) => {
    const args = norm(String(t.arguments ?? ''));
    const mine = caused.filter((x) => !linked.has(x.id) && (args.includes(norm(x.text).slice(0, 200)) || isMcpCallOf(t.name, x)));
    for (const x of mine) linked.add(x.id);
    return mine;
  });
  const unlinked = caused.filter((x) => !linked.has(x.id));
  const usage = isRecord(r.usage) ? r.usage : null;
  return (
    <div className="conversation" data-testid="conversation">
      <div className="muted">
        model <b>{String(r.model ?? '')}</b>
        {usage && ` · ${Object.entries(usage).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${String(v)}`).join(' · ')}`}
        {r.stopReason ? ` · stop: ${String(r.stopReason)}` : ''}
      </div>
      {(turns as unknown[]).filter(isRecord).map((t, i) => (
        <div key={i} className={`turn role-${String(t.role)}`}>
          <div className="turn-role">{String(t.role)}</div>
          <TextBlock text={turnContent(t.content)} className="turn-text" />
        </div>
      ))}
      {(typeof r.assistantText === 'string' && r.assistantText) || toolCalls.length ? (
        <div className="turn role-assistant">
          <div className="turn-role">assistant</div>
          {typeof r.assistantText === 'string' && r.assistantText && <TextBlock text={r.assistantText} className="turn-text" />}
          {toolCalls.map((t, i) => (
            <div key={i} className="tool-call" data-testid="tool-call">
              <div className="tool-name mono">
                ⚙ {String(t.name)} <span className="muted">{String(t.id ?? '')}</span>
              </div>
              <TextBlock text={prettyJson(t.arguments)} />
              {byCall[i].map((x) => (
                <CausedLink key={x.id} x={x} />
              ))}
            </div>
          ))}
        </div>
      ) : null}
      {unlinked.length > 0 && (
        <Section title="Commands this call caused">
          {unlinked.map((x) => (
            <CausedLink key={x.id} x={x} />
          ))}
        </Section>
      )}
      {r.apiError !== null && r.apiError !== undefined && (
        <Section title="API error">
          <TextBlock text={prettyJson(r.apiError)} />
        </Section>
      )}
    </div>
  );
}

function CausedLink({ x }: { x: CommandView }) {
  return (
    <a className="caused" href={href('session', x.sessionId, { cmd: x.id })} data-testid="caused-link">
      ↳ <KindTag kind={x.kind} /> <StatusPill status={x.status} /> <span className="mono">{x.text.slice(0, 160)}</span>
    </a>
  );
}

function ShellBody({ c, session }: { c: CommandView; session: SessionDetail }) {
  const [output, setOutput] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    if (c.startSeq === null) return;
    const from = c.startSeq - 1;
    const to = c.endSeq ?? Number.MAX_SAFE_INTEGER;
    api.events(session.id, from, Math.min(Math.max(to - from, 1), 2000)).then((r) => {
      if (cancelled) return;
      const text = r.events
        .filter((e) => e.seq <= to && (e.kind === 'o' || e.kind === 'e') && typeof e.data === 'string')
        .map((e) => e.data as string)
        .join('');
      setOutput(stripAnsi(text));
    }, () => setOutput(null));
    return () => {
      cancelled = true;
    };
  }, [c.id, c.startSeq, c.endSeq, session.id]);
  const r = isRecord(c.result) ? c.result : {};
  return (
    <>
      <CodeView value={c.text} language={languageOf(c.kind)} />
      <div className="muted">{r.exitCode !== undefined ? `exit ${String(r.exitCode)}` : ''}</div>
      {output !== null && output !== '' && (
        <Section title="Output">
          <TextBlock text={output.length > 200_000 ? output.slice(0, 200_000) + '\n…' : output} testId="shell-output" />
        </Section>
      )}
    </>
  );
}

function SftpBody({ c }: { c: CommandView }) {
  const r = isRecord(c.result) ? c.result : {};
  const diff = isRecord(r.diff) ? r.diff : null;
  return (
    <>
      <div className="mono">{c.text}</div>
      <div className="muted">
        {typeof r.bytesWritten === 'number' ? `${fmtBytes(r.bytesWritten)} written` : ''} {typeof r.bytesRead === 'number' ? `· ${fmtBytes(r.bytesRead)} read` : ''}
      </div>
      {diff && typeof diff.after === 'string' ? (
        <Section title={`What changed in ${String(r.path ?? '')}`}>
          <DiffView original={typeof diff.before === 'string' ? diff.before : ''} modified={diff.after} language="plaintext" height={360} />
        </Section>
      ) : diff && typeof diff.unavailable === 'string' ? (
        <div className="muted">no diff: {diff.unavailable}</div>
      ) : null}
    </>
  );
}
