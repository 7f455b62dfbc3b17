import type { CommandCandidate } from './http/lineage';
import { extractCommandCandidates, matchesCommand, mcpCandidate, toolCallsOf } from './http/lineage';
import type { CommandFinish, CommandKind, CommandStart, Json } from './common/types';
import type { SessionInfo } from './store/recorder';

interface Pending {
  llmCommandId: number;
  /** the llm command's session and (masked) text: what a reviewer of a held command is shown */
  sessionId: string;
  text: string;
  candidate: CommandCandidate;
  at: number;
}

const MAX_PER_RUN = 500;
const MAX_TRACES = 10_000;

/** The trace id of a `traceparent` (W3C: version-traceid-spanid-flags) in a command's detail. */
function traceIdOf(detail: Json | undefined): string | null {
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return null;
  const tp = detail.traceparent;
  const m = typeof tp === 'string' ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp.trim()) : null;
  return m && !/^0+$/.test(m[1]) ? m[1] : null;
}
const MAX_AGE_MS = 6 * 60 * 60 * 1000;

/** Which candidate kinds a downstream command of a given kind can fulfil. */
const FULFILS: Partial<Record<CommandKind, Array<CommandCandidate['kind']>>> = {
  sql: ['sql'],
  shell: ['shell', 'kubectl'],
  exec: ['shell', 'kubectl'],
  kubectl: ['kubectl', 'shell'],
  http: ['http'],
  mcp: ['mcp'],
};

/**
 * Links a model's tool calls to the commands the gateway then sees: same run (or, without a
 * run, same identity), after the call, matching text. Texts on both sides are already masked
 * the same way, so a secret in a command does not break the match.
 */
export class Lineage {
  private readonly pending = new Map<string, Pending[]>();

  private key(s: Pick<SessionInfo, 'runId' | 'identity'>): string | null {
    if (s.runId) return `run:${s.runId}`;
    return s.identity ? `identity:${s.identity}` : null;
  }

  /** Recorder hook: an llm command finished; remember the commands its tool calls ask for. */
  onCommandFinish = (s: SessionInfo, commandId: number, start: CommandStart, finish: CommandFinish): void => {
    if (start.kind === 'mcp') return this.mcpFinished(s.id, commandId);
    if (start.kind !== 'llm') return;
    const key = this.key(s);
    if (!key) return;
    const list = this.pending.get(key) ?? [];
    const now = Date.now();
    for (const call of toolCallsOf(finish.result)) {
      const mcp = mcpCandidate(call);
      for (const candidate of mcp ? [...extractCommandCandidates(call), mcp] : extractCommandCandidates(call)) list.push({ llmCommandId: commandId, sessionId: s.id, text: start.text, candidate, at: now });
    }
    const fresh = list.filter((p) => now - p.at < MAX_AGE_MS).slice(-MAX_PER_RUN);
    this.pending.set(key, fresh);
  };

  /**
   * Recorder hook: a command starts; returns the command that caused it, if any: the MCP tool call
   * whose W3C trace it continues (any run, any identity: a trace id is unique), else the llm command
   * whose tool call asked for it.
   */
  onCommandStart = (s: SessionInfo, commandId: number, start: CommandStart): number | null => {
    if (start.kind === 'mcp') this.mcpStarted(s.id, commandId);
    else {
      const mcpSession = this.via.get(s.id);
      const call = mcpSession === undefined ? undefined : this.mcpCalls.get(mcpSession);
      if (call) return call.inFlight.length ? call.inFlight[call.inFlight.length - 1] : call.last;
    }
    const trace = traceIdOf(start.detail);
    if (trace !== null) {
      if (start.kind === 'mcp') {
        this.traces.set(trace, commandId);
        if (this.traces.size > MAX_TRACES) this.traces.delete(this.traces.keys().next().value as string);
      } else {
        const mcp = this.traces.get(trace);
        if (mcp !== undefined) return mcp;
      }
    }
    return this.causeOf(s, start.kind, start.text)?.commandId ?? null;
  };

  // --- MCP via (issue 15): a session opened by an MCP server's own client (upstream.via) ---
  /** session id → the MCP session whose server opened it */
  private readonly via = new Map<string, string>();
  /** MCP session id → its tool calls in flight (oldest first) and the last one started */
  private readonly mcpCalls = new Map<string, { inFlight: number[]; last: number }>();

  /**
   * A session opened with an MCP session's `via` token: each command it starts is caused by the
   * tool call in flight in that MCP session, the newest one when several are, else the last one.
   */
  bindVia(sessionId: string, mcpSessionId: string): void {
    this.via.set(sessionId, mcpSessionId);
    if (this.via.size > MAX_TRACES) this.via.delete(this.via.keys().next().value as string);
  }

  private mcpStarted(sessionId: string, commandId: number): void {
    const c = this.mcpCalls.get(sessionId);
    if (c) {
      c.inFlight.push(commandId);
      c.last = commandId;
      return;
    }
    this.mcpCalls.set(sessionId, { inFlight: [commandId], last: commandId });
    if (this.mcpCalls.size > MAX_TRACES) this.mcpCalls.delete(this.mcpCalls.keys().next().value as string);
  }

  private mcpFinished(sessionId: string, commandId: number): void {
    const c = this.mcpCalls.get(sessionId);
    if (c) c.inFlight = c.inFlight.filter((id) => id !== commandId);
  }
  // --- end MCP via ---

  /** trace id → the MCP tool call that carried it, newest last */
  private readonly traces = new Map<string, number>();

  /** The model call whose tool call asked for this (masked) command text, if any. */
  causeOf(s: Pick<SessionInfo, 'runId' | 'identity'>, kind: CommandKind, text: string): { commandId: number; sessionId: string; text: string } | null {
    const kinds = FULFILS[kind];
    const key = this.key(s);
    if (!kinds || !key) return null;
    const list = this.pending.get(key);
    if (!list) return null;
    for (let i = list.length - 1; i >= 0; i--) {
      const p = list[i];
      if (kinds.includes(p.candidate.kind) && matchesCommand(p.candidate, text)) return { commandId: p.llmCommandId, sessionId: p.sessionId, text: p.text };
    }
    return null;
  }
}
