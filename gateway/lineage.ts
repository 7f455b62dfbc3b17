import type { CommandCandidate } from './http/lineage';
import { extractCommandCandidates, matchesCommand, mcpCandidate, toolCallsOf } from './http/lineage';
import type { CommandFinish, CommandKind, CommandStart } from './core/types';
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

  /** Recorder hook: a command starts; returns the llm command that caused it, if any. */
  onCommandStart = (s: SessionInfo, _commandId: number, start: CommandStart): number | null => this.causeOf(s, start.kind, start.text)?.commandId ?? null;

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
