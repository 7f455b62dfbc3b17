import type { FindingView, IdentityView, RunView, SearchHit, SessionDetail, SessionSummary } from '../common/api-types';
import type { TombstoneView } from '../store/integrity';
import type { BlameReport } from '../store/blame';
import type { RunCounts, RunTimeline } from '../store/runs';

/** Human-readable output for the read commands; `--json` prints the same values raw. */

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Recorded text is hostile: strip control characters so nothing in it can drive the user's terminal. */
export function safe(text: string, max = 120): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return clean.length > max ? clean.slice(0, max - 1) + '…' : clean;
}

function duration(ms: number | null): string {
  if (ms === null) return 'live';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60000)}m${Math.round((ms % 60000) / 1000)}s`;
}

export function formatSessions(list: SessionSummary[]): string {
  if (list.length === 0) return 'no sessions recorded yet\n';
  return table(
    ['SESSION', 'STARTED', 'IDENTITY', 'CONNECTION', 'PROTOCOL', 'DURATION', 'CMDS', 'FINDINGS', 'STATUS'],
    list.map((s) => [s.id, s.startedAt.replace('T', ' ').slice(0, 19), safe(s.identity ?? '-', 24), s.connection, s.protocol, duration(s.durationMs), String(s.commandCount), String(s.findingCount), s.status]),
  );
}

export function formatSessionDetail(d: SessionDetail): string {
  const out: string[] = [];
  out.push(`session    ${d.id}`);
  out.push(`identity   ${safe(d.identity ?? '-')}`);
  out.push(`connection ${d.connection} (${d.protocol})`);
  if (d.run) out.push(`run        ${d.run}`);
  out.push(`started    ${d.startedAt}`);
  out.push(`ended      ${d.endedAt ?? '(live)'}${d.endReason ? ` — ${safe(d.endReason)}` : ''}`);
  const check = d.integrity ? (d.integrity.state === 'bad' ? `, ${safe(d.integrity.message, 300)}` : d.integrity.state === 'legacy' ? ', sealed (events only: recorded before rows were chained)' : d.sealed ? ', sealed and verified' : '') : d.sealed ? ', sealed' : '';
  out.push(`status     ${d.status}${check}`);
  out.push(`events     ${d.eventCount}`);
  out.push('');
  out.push(`commands (${d.commands.length})`);
  for (const c of d.commands) {
    const r = c.result as Record<string, unknown> | null;
    let summary = '';
    if (r && typeof r === 'object') {
      if (typeof r.tag === 'string') summary = r.tag;
      else if (typeof r.rowCount === 'number') summary = `${r.rowCount} rows`;
      else if (r.exitCode !== undefined) summary = `exit ${String(r.exitCode)}`;
      else if (r.status !== undefined) summary = `HTTP ${String(r.status)}`;
    }
    if (c.error) summary = `error: ${c.error}`;
    out.push(`  ${String(c.index).padStart(3)}  ${c.kind.padEnd(6)} ${c.status.padEnd(9)} ${duration(c.durationMs).padStart(7)}  ${safe(c.text, 90)}${summary ? `  → ${safe(summary, 60)}` : ''}`);
  }
  out.push('');
  out.push(`findings (${d.findings.length})`);
  for (const f of d.findings) out.push(`  ${f.category.padEnd(9)} ${f.kind.padEnd(24)} ${f.fp ?? ''}  ${f.seenByAgent ? 'seen by the agent' : 'sent by the agent'}${f.commandId ? `  command ${f.commandId}` : ''}`);
  return out.join('\n') + '\n';
}

export function formatSearch(hits: SearchHit[]): string {
  if (hits.length === 0) return 'no matching commands\n';
  return table(['SESSION', 'COMMAND', 'KIND', 'CONNECTION', 'TEXT'], hits.map((h) => [h.sessionId, String(h.commandId), h.kind, h.connection, safe(h.snippet, 100)]));
}

export function formatFindings(list: FindingView[]): string {
  if (list.length === 0) return 'no findings\n';
  return table(
    ['WHEN', 'CATEGORY', 'KIND', 'FINGERPRINT', 'DIRECTION', 'SESSION', 'COMMAND'],
    list.map((f) => [f.createdAt.replace('T', ' ').slice(0, 19), f.category, f.kind, f.fp ?? '-', f.seenByAgent ? 'to agent' : 'from agent', f.sessionId ?? '-', f.commandId ? String(f.commandId) : '-']),
  );
}

export function formatRuns(list: RunView[]): string {
  if (list.length === 0) return 'no runs recorded yet\n';
  return table(
    ['RUN', 'STARTED', 'IDENTITY', 'EXIT', 'SESSIONS', 'COMMAND'],
    list.map((r) => [r.id, r.startedAt.replace('T', ' ').slice(0, 19), r.identity ?? '-', r.exitCode === null ? (r.endedAt ? '-' : 'running') : String(r.exitCode), String(r.sessions.length), safe(r.argv.join(' '), 60)]),
  );
}

export function formatIdentities(list: IdentityView[]): string {
  if (list.length === 0) return 'no identities: create one with "flightlog identity add NAME --kind agent"\n';
  return table(
    ['NAME', 'KIND', 'CREATED', 'STATUS', 'TOKENS', 'KEYS'],
    list.map((i) => [i.name, i.kind, i.createdAt.slice(0, 10), i.revokedAt ? 'revoked' : 'active', String(i.tokens), String(i.keys.length)]),
  );
}

/** Sessions retention removed: listed after the sessions, so a gap in the record is never silent. */
export function formatTombstones(list: TombstoneView[]): string {
  if (list.length === 0) return '';
  return (
    '\n' +
    list
      .map((t) => `${t.sessionId}  ${t.connection}  ${t.protocol}  ${t.startedAt.replace('T', ' ').slice(0, 19)} → ${(t.endedAt ?? '').replace('T', ' ').slice(0, 19)}  ${t.eventCount} events  removed by ${t.reason} on ${t.removedAt.slice(0, 10)}`)
      .join('\n') +
    '\n'
  );
}

/** `flightlog blame`: one line per command, oldest first, the change and the causing model call beneath. */
export function formatBlame(r: BlameReport): string {
  if (r.entries.length === 0) return `no recorded command touched ${r.target}\n`;
  const out: string[] = [`${r.target}: ${r.entries.length} command${r.entries.length === 1 ? '' : 's'}${r.since ? `, last known good ${r.since}` : ''}`];
  for (const e of r.entries) {
    const mark = e.firstWriteSince ? '>>' : '  ';
    out.push(
      `${mark} ${e.at.replace('T', ' ').slice(0, 19)}  ${(e.identity ?? '-').padEnd(10)} ${(e.run ?? '-').padEnd(12)} ${e.sessionId} #${e.index}  ${e.access.padEnd(5)} ${e.status.padEnd(8)} ${safe(e.text, 90)}`,
    );
    if (e.firstWriteSince) out.push('     ^ first write after the last known good time');
    const c = e.change;
    if (c?.tag) out.push(`     ${safe(c.tag, 40)}${c.rowCount !== null && c.rowCount !== undefined ? ` (${c.rowCount} rows)` : ''}`);
    if (c?.unavailable) out.push(`     change: ${safe(c.unavailable, 80)}`);
    if (c && c.after !== undefined) out.push(`     change: ${c.before === null || c.before === undefined ? 'created' : `${c.before.length} → `}${c.after === null ? 'removed' : `${c.after.length} bytes`}`);
    if (e.error) out.push(`     error: ${safe(e.error, 100)}`);
    if (e.cause) out.push(`     caused by model call ${e.cause.sessionId} #${e.cause.index}: ${safe(e.cause.text, 80)}`);
  }
  return out.join('\n') + '\n';
}

/** `flightlog runs` with what each run did: commands, writes, findings, blocked and held. */
export function formatRunsWithCounts(list: Array<RunView & { counts: RunCounts }>): string {
  if (list.length === 0) return 'no runs recorded yet\n';
  return table(
    ['RUN', 'STARTED', 'IDENTITY', 'EXIT', 'SESSIONS', 'CMDS', 'WRITES', 'FINDINGS', 'BLOCKED', 'HELD', 'COMMAND'],
    list.map((r) => [
      r.id,
      r.startedAt.replace('T', ' ').slice(0, 19),
      r.identity ?? '-',
      r.exitCode === null ? (r.endedAt ? '-' : 'running') : String(r.exitCode),
      String(r.sessions.length),
      String(r.counts.commands),
      String(r.counts.writes),
      String(r.counts.findings),
      String(r.counts.blocked),
      String(r.counts.held),
      safe(r.argv.join(' '), 60),
    ]),
  );
}

/** `flightlog show --run`: the run's steps in time order; `S2#3` is session 2 of the run, its command #3. */
export function formatRunTimeline(t: RunTimeline): string {
  const sessionNo = new Map(t.sessions.map((s, i) => [s.id, i + 1]));
  const label = new Map<number, string>();
  for (const s of t.steps) if (s.type === 'command') label.set(s.commandId, `S${sessionNo.get(s.sessionId) ?? '?'}#${s.index}`);
  const c = t.counts;
  const out: string[] = [
    `run ${t.id}  ${t.identity ?? '-'}  ${safe(t.argv.join(' '), 60)}`,
    `started ${t.startedAt.replace('T', ' ').slice(0, 19)}${t.endedAt ? `, ended ${t.endedAt.replace('T', ' ').slice(0, 19)}` : ', running'}${t.exitCode !== null ? `, exit ${t.exitCode}` : ''}`,
    `${t.sessions.length} sessions, ${c.commands} commands, ${c.writes} writes, ${c.findings} findings, ${c.blocked} blocked, ${c.held} held`,
    '',
  ];
  t.sessions.forEach((s, i) => out.push(`  S${i + 1}  ${s.id}  ${s.connection} (${s.protocol})  ${s.commandCount} commands`));
  out.push('');
  for (const s of t.steps) {
    if (s.type === 'finding') {
      const on = s.commandId !== null ? ` on ${label.get(s.commandId) ?? `command ${s.commandId}`}` : '';
      out.push(`      ! ${s.category} ${safe(s.kind, 40)}${s.action ? ` ${s.action}` : ''}${s.outcome ? ` → ${s.outcome}` : ''}${on}`);
      continue;
    }
    const time = s.at.slice(11, 19);
    out.push(`${time}  ${(label.get(s.commandId) ?? '').padEnd(6)} ${s.kind.padEnd(6)} ${(s.write ? 'write' : '').padEnd(5)} ${s.status.padEnd(8)} ${safe(s.text, 90)}${s.summary ? `  → ${safe(s.summary, 40)}` : ''}`);
    if (s.causedBy !== null) out.push(`      ← caused by ${label.get(s.causedBy) ?? `command ${s.causedBy}`}`);
    if (s.error) out.push(`      error: ${safe(s.error, 100)}`);
    if (s.reply) out.push(`      reply: ${safe(s.reply, 100)}`);
    for (const call of s.toolCalls) out.push(`      tool call ${safe(call.name, 30)}(${safe(call.arguments, 80)})`);
    for (const e of s.edits ?? []) out.push(`      edits file:local:${safe(e.path, 80)} (${e.tool}${e.after === null ? ', deleted' : e.before === null ? ', whole file' : ''})`);
    if (s.caused.length) out.push(`      → caused ${s.caused.map((id) => label.get(id) ?? `command ${id}`).join(', ')}`);
  }
  return out.join('\n') + '\n';
}
