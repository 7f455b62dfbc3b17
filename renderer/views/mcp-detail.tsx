/**
 * MCP in the app: a `tools/call` command as its tool, arguments, result content and the commands
 * it caused (the SQL its server ran through the gateway), and a `tool-changed` finding's before and
 * after as a diff. Everything shown is what the recorder kept: masked.
 */
import { useEffect, useState } from 'react';
import type { CommandView, FindingView, SessionDetail } from '../../gateway/common/api-types';
import { api } from '../api';
import { KindTag, StatusPill, TextBlock } from '../components/common';
import { DiffView } from '../components/monaco';
import { fmtDuration, isRecord, prettyJson } from '../format';
import { href } from '../router';

/** The commands a command caused, from the session in view or fetched. */
export function useCaused(c: CommandView, session: SessionDetail): CommandView[] {
  const [caused, setCaused] = useState<CommandView[]>([]);
  useEffect(() => {
    let cancelled = false;
    Promise.all(c.caused.map((id) => session.commands.find((x) => x.id === id) ?? api.command(id).catch(() => null))).then((list) => {
      if (!cancelled) setCaused(list.filter((x): x is CommandView => x !== null));
    });
    return () => {
      cancelled = true;
    };
  }, [c.caused, session]);
  return caused;
}

function contentText(content: unknown): string {
  if (!Array.isArray(content)) return prettyJson(content);
  return content
    .map((b) => {
      if (!isRecord(b)) return prettyJson(b);
      if (b.type === 'text' && typeof b.text === 'string') {
        // a server returning JSON as text (rows): shown pretty
        try {
          return prettyJson(JSON.parse(b.text));
        } catch {
          return b.text;
        }
      }
      if (b.type === 'image' || b.type === 'audio') return `(${String(b.type)}, ${String(b.mimeType ?? '')})`;
      if (b.type === 'resource' && isRecord(b.resource)) return `resource ${String(b.resource.uri ?? '')}\n${typeof b.resource.text === 'string' ? b.resource.text : ''}`;
      if (b.type === 'resource_link') return `→ ${String(b.uri ?? '')}`;
      return prettyJson(b);
    })
    .join('\n');
}

export function McpBody({ c, session }: { c: CommandView; session: SessionDetail }) {
  const d = isRecord(c.detail) ? c.detail : {};
  const r = isRecord(c.result) ? c.result : {};
  const caused = useCaused(c, session);
  const method = String(d.method ?? 'tools/call');
  const args = method === 'tools/call' ? d.arguments : d.params;
  const content = r.content ?? r.contents ?? r.messages;
  return (
    <div className="mcp-call" data-testid="mcp-call">
      <div className="mcp-line mono" data-testid="mcp-tool">
        <span className="method">{method}</span>{' '}
        <span>
          {String(d.server ?? session.connection)}.<b>{String(d.tool ?? '')}</b>
        </span>
        {r.isError === true && <span className="http-status s5">isError</span>}
        {typeof r.durationMs === 'number' && <span className="muted"> · {fmtDuration(r.durationMs)}</span>}
        {d.toolChanged === true && (
          <a className="tag warn" href={href('findings', null, { session: session.id })}>
            tool definition changed
          </a>
        )}
      </div>
      <div className="two-col">
        <section className="section">
          <h3>Arguments</h3>
          <TextBlock text={args === undefined ? '(recorded as a head: see the request)' : prettyJson(args)} testId="mcp-arguments" />
          {isRecord(d.request) && <TextBlock text={prettyJson(d.request)} />}
        </section>
        <section className="section">
          <h3>Result</h3>
          {content !== undefined ? <TextBlock text={contentText(content)} testId="mcp-result" /> : <TextBlock text={prettyJson(r)} testId="mcp-result" />}
          {isRecord(r.structuredContent) && <TextBlock text={prettyJson(r.structuredContent)} />}
        </section>
      </div>
      {typeof d.traceparent === 'string' && <div className="muted mono">traceparent {d.traceparent}</div>}
      {caused.length > 0 && (
        <section className="section">
          <h3>Commands this call caused</h3>
          {caused.map((x) => (
            <a key={x.id} className="caused" href={href('session', x.sessionId, { cmd: x.id })} data-testid="caused-link">
              ↳ <KindTag kind={x.kind} /> <StatusPill status={x.status} /> <span className="mono">{x.text.slice(0, 160)}</span>
              {isRecord(x.result) && typeof x.result.rowCount === 'number' && <span className="muted"> · {x.result.rowCount} row{x.result.rowCount === 1 ? '' : 's'}</span>}
            </a>
          ))}
        </section>
      )}
    </div>
  );
}

/** How a cause is named on its effect: a model call, an MCP call. */
export function causeLabel(kind: string | undefined): string {
  return kind === 'mcp' ? 'MCP call' : kind === 'llm' || kind === undefined ? 'model call' : `${kind} command`;
}

/** A `tool-changed` finding: the definition the connection accepted and the one the server now lists. */
export function ToolChangedDiff({ f }: { f: FindingView }) {
  const d = isRecord(f.detail) ? f.detail : null;
  if (f.kind !== 'tool-changed' || !d) return null;
  const changes = Array.isArray(d.changes) ? d.changes.map((x) => (isRecord(x) ? String(x.field) : String(x))) : [];
  return (
    <div className="tool-diff" data-testid="tool-changed-diff">
      <div className="muted">
        tool <b className="mono">{String(d.server ?? '')}.{String(d.tool ?? '')}</b>
        {changes.length > 0 && ` · changed: ${changes.join(', ')}`} · before: the accepted definition, after: what the server listed
      </div>
      <DiffView original={prettyJson(d.before)} modified={prettyJson(d.after)} language="json" height={260} />
    </div>
  );
}

/** Whether a caused MCP command is what a model's tool call named (bare or namespaced, e.g. mcp__db__query). */
export function isMcpCallOf(toolName: unknown, x: CommandView): boolean {
  const tool = x.kind === 'mcp' && isRecord(x.detail) && typeof x.detail.tool === 'string' ? x.detail.tool : null;
  const name = String(toolName ?? '');
  return tool !== null && tool !== '' && (name === tool || name.endsWith(`__${tool}`) || name.endsWith(`_${tool}`));
}
