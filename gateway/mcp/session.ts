/**
 * One MCP session as the gateway records and guards it, whatever carries its JSON-RPC messages
 * (the stdio pipe, Streamable HTTP, legacy HTTP+SSE). Requests are paired with their responses by
 * id in both directions; every `tools/call`, `resources/read` and `prompts/get` is a command of
 * kind `mcp` (text `conn.tool {"arg":…}`), decided by the guardrails first; everything else is an
 * event. Payloads are masked by the recorder, which stays the only writer.
 *
 * How a transport uses it:
 *   1. Authenticate the agent, open a SessionRecorder (ctx.openSession) and build
 *      `new McpSession(mcpSessionContext(ctx, session, {identity, runId}, tools))`, where `tools`
 *      is one ToolBaselines per connection (`toolBaselinesFile(dataDir, name)`), shared by its sessions.
 *      `mcp.sessionId` names the recorded session; end the transport when `session.onTerminate` fires.
 *   2. For each message from the client, in arrival order: `const v = await mcp.clientMessage(json, raw)`
 *      (json: the parsed message, or undefined when it did not parse; raw: its bytes, no newline).
 *        forward → send `raw` upstream unchanged;
 *        answer  → send `v.message` (a JSON-RPC message, or an array for a batch) to the client
 *                  instead; nothing goes upstream;
 *        drop    → send nothing;
 *        hold    → a human decides: go on with later messages, and when `v.outcome` settles act on
 *                  it as above (it is never `hold` again).
 *      Act on each verdict before asking about the next message, so the order upstream is kept.
 *   3. For each message from the server: `mcp.serverMessage(json, raw)`, then send `raw` to the client
 *      (on a `mask: live` connection, the masked re-encoding when masking found something).
 *      Server stderr, where there is one: `mcp.stderr(text)`.
 *   4. `mcp.close(reason)` when either side goes away: commands in flight are finished as
 *      cancelled, holds are withdrawn, and the SessionRecorder is closed and sealed.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ApprovalOutcome, ApprovalRequest, HeldCommand } from '../approvals';
import { deniedMessage, recordApprovalOutcome } from '../approvals';
import type { ListenerContext } from '../core/listener';
import type { CommandHandle, CommandStatus, Direction, Json, Policy, PolicyDecision, PolicyInput, SessionRecorder, SessionStatus } from '../common/types';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { diffTool, fingerprintTool, toolDefinition, type ToolBaselines, type ToolDefinition } from './tool-drift';

/** A JSON-RPC 2.0 message as the MCP wire carries it. */
export type JsonRpcMessage = { [key: string]: Json };

export type FinalVerdict = { action: 'forward' } | { action: 'answer'; message: JsonRpcMessage | JsonRpcMessage[] } | { action: 'drop' };
export type Verdict = FinalVerdict | { action: 'hold'; outcome: Promise<FinalVerdict> };

export interface McpSessionContext {
  /** the recorder's session, opened by the transport; the McpSession closes it */
  session: SessionRecorder;
  /** the connection's name: the server part of command text and of `match.mcp.server` */
  connection: string;
  identity: string;
  runId: string | null;
  policy: Policy;
  /** absent: a hold is denied */
  holdForApproval?: (req: Omit<ApprovalRequest, 'connection' | 'protocol'>) => HeldCommand;
  /** masks the command text shown to an approver (the recorder masks everything it stores) */
  maskText: (text: string) => string;
  /** the connection's accepted tool definitions (drift); absent: drift is not checked */
  tools?: ToolBaselines;
  /** bytes kept of each large payload */
  payloadHead: number;
}

/**
 * The context a transport builds for one authenticated agent session from its listener context;
 * `tools` is the connection's drift baseline (one ToolBaselines per connection, see toolBaselinesFile).
 */
export function mcpSessionContext(
  ctx: Pick<ListenerContext, 'connection' | 'policy' | 'holdForApproval' | 'masker' | 'recording'>,
  session: SessionRecorder,
  who: { identity: string; runId: string | null },
  tools?: ToolBaselines,
): McpSessionContext {
  return {
    session,
    connection: ctx.connection.name,
    identity: who.identity,
    runId: who.runId,
    policy: ctx.policy,
    holdForApproval: ctx.holdForApproval,
    maskText: (t) => ctx.masker.maskText(t).text,
    tools,
    payloadHead: ctx.recording.payloadHead,
  };
}

/** JSON-RPC error codes the gateway answers with itself. */
export const MCP_ERRORS = {
  parse: -32700,
  /** a guardrail denied the request (implementation-defined server error range) */
  blocked: -32003,
  /** the recording store failed: nothing is forwarded (fail-closed) */
  notRecorded: -32004,
} as const;

interface PendingClientRequest {
  method: string;
  command: CommandHandle | null;
  startedAt: number;
  /** a tools/call's tool, for the response's recording */
  tool?: string;
  /** the request's progress token: its notifications are filed under the command until it ends */
  progressToken?: string;
}

/** Methods whose requests are commands a reviewer reads (and guardrails decide). */
const COMMAND_METHODS = new Set(['tools/call', 'resources/read', 'prompts/get']);

const FORWARD: FinalVerdict = Object.freeze({ action: 'forward' }) as FinalVerdict;
const DROP: FinalVerdict = Object.freeze({ action: 'drop' }) as FinalVerdict;

function idKey(id: unknown): string | null {
  if (typeof id === 'string') return `s:${id}`;
  if (typeof id === 'number') return `n:${id}`;
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The W3C trace context a client sent in `params._meta`, when it did. */
function traceparentOf(params: unknown): string | null {
  const meta = isObject(params) && isObject(params._meta) ? params._meta : null;
  const tp = meta?.traceparent;
  return typeof tp === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(tp) ? tp : null;
}

function progressTokenOf(params: unknown): string | null {
  const meta = isObject(params) && isObject(params._meta) ? params._meta : null;
  const t = meta?.progressToken;
  return typeof t === 'string' ? `s:${t}` : typeof t === 'number' ? `n:${t}` : null;
}

/** JSON delimiters a secret token does not contain: `"` `,` `:` space `\` newline `}` `]`. */
const DELIMITERS = new Set([0x22, 0x2c, 0x3a, 0x20, 0x5c, 0x0a, 0x7d, 0x5d]);
/** how far back a head's end looks for a delimiter */
const CUT_LOOKBACK = 512;

/**
 * The first `cap` bytes of a message, ended just after the last JSON delimiter near the cap:
 * a token cut in half would not match its masking rule, and half a secret must not be kept.
 */
export function cutHead(raw: Buffer, cap: number): Buffer {
  if (raw.length <= cap) return raw;
  for (let i = cap - 1; i >= Math.max(0, cap - CUT_LOOKBACK); i--) if (DELIMITERS.has(raw[i])) return raw.subarray(0, i + 1);
  // no delimiter near the end (one long run, e.g. base64): keep the head short of that run
  return raw.subarray(0, Math.max(0, cap - CUT_LOOKBACK));
}

/** `conn.tool {"arg":…}`: the command text of a tools/call. */
export function toolCallText(connection: string, tool: string, args: unknown): string {
  return `${connection}.${tool} ${JSON.stringify(args ?? {})}`;
}

/**
 * A recorded tools/call as guardrails see it (`flightlog policy test` over history): the tool and
 * the (masked) arguments back from its text; undefined when the text is not one (a capped one).
 */
export function toolCallOfText(connection: string, text: string): PolicyInput['mcp'] {
  if (!text.startsWith(`${connection}.`)) return undefined;
  const space = text.indexOf(' ', connection.length + 1);
  if (space < 0) return undefined;
  let args: Json;
  try {
    args = JSON.parse(text.slice(space + 1)) as Json;
  } catch {
    return undefined;
  }
  return { server: [connection], tool: text.slice(connection.length + 1, space), arguments: args, changed: false };
}

export class McpSession {
  private readonly pendingClient = new Map<string, PendingClientRequest>();
  private readonly pendingServer = new Map<string, string>();
  private readonly held = new Map<string, { hold: HeldCommand; settle: (v: FinalVerdict) => void }>();
  private readonly progress = new Map<string, number>();
  /** what this session saw of each tool, masked, by name */
  private readonly seenTools = new Map<string, { def: ToolDefinition; fingerprint: string }>();
  /** tools whose definition differs from the accepted one: guardrails see `changed: true` */
  private readonly changedTools = new Set<string>();
  private serverName: string | null = null;
  private closed = false;

  constructor(private readonly ctx: McpSessionContext) {}

  get sessionId(): string {
    return this.ctx.session.id;
  }

  /** Decides what happens to one client message, recording it first. */
  async clientMessage(json: unknown, raw: Buffer): Promise<Verdict> {
    if (this.closed) return DROP;
    if (json === undefined || (!isObject(json) && !Array.isArray(json))) {
      this.event('mcp.unparsed', 'client→upstream', this.head(raw));
      return { action: 'answer', message: { jsonrpc: '2.0', id: null, error: { code: MCP_ERRORS.parse, message: 'Parse error: not a JSON-RPC message' } } };
    }
    if (this.ctx.session.failed) return this.notRecorded(json);
    if (Array.isArray(json)) return this.batch(json, raw);
    const m = json;
    try {
      if (typeof m.method === 'string') {
        const key = idKey(m.id);
        if (key === null) return this.clientNotification(m.method, m, raw);
        return await this.clientRequest(key, m.method, m, raw);
      }
      // a response to a server→client request (sampling, elicitation, roots)
      const key = idKey(m.id);
      const method = key ? this.pendingServer.get(key) : undefined;
      if (key) this.pendingServer.delete(key);
      this.event('mcp.response', 'client→upstream', this.body(raw, { id: m.id as Json, method: method ?? null, result: (m.result ?? null) as Json, error: (m.error ?? null) as Json }));
      return FORWARD;
    } catch {
      return this.notRecorded(m);
    }
  }

  /** Records one server message; the transport sends it on to the client unchanged. */
  serverMessage(json: unknown, raw: Buffer): void {
    if (this.closed) return;
    if (!isObject(json)) {
      if (Array.isArray(json)) for (const m of json) this.serverMessage(m, Buffer.from(JSON.stringify(m)));
      else this.event('mcp.unparsed', 'upstream→client', this.head(raw));
      return;
    }
    try {
      const m = json;
      const key = idKey(m.id);
      if (typeof m.method === 'string') {
        if (key) this.pendingServer.set(key, m.method);
        const commandId = m.method === 'notifications/progress' ? this.progress.get(progressTokenOf({ _meta: m.params }) ?? '') : undefined;
        this.event(key ? 'mcp.request' : 'mcp.notification', 'upstream→client', this.body(raw, { id: (m.id ?? null) as Json, method: m.method, params: (m.params ?? null) as Json }), commandId);
        return;
      }
      const pending = key ? this.pendingClient.get(key) : undefined;
      if (key) this.pendingClient.delete(key);
      if (pending) this.response(pending, m, raw);
      else this.event('mcp.response', 'upstream→client', this.body(raw, { id: (m.id ?? null) as Json, method: null, result: (m.result ?? null) as Json, error: (m.error ?? null) as Json }));
    } catch {
      // recording failures surface on the next client command (fail-closed there)
    }
  }

  /** Records what the server wrote on stderr (masked by the recorder; the transport caps it). */
  stderr(text: string): void {
    if (!this.closed) this.event('mcp.stderr', 'upstream→client', { text });
  }

  /** Ends the session: commands in flight are cancelled, holds withdrawn, the recording sealed. */
  close(reason: string, status: SessionStatus = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.held.values()) h.hold.cancel();
    this.held.clear();
    for (const p of this.pendingClient.values()) p.command?.finish({ status: 'cancelled', error: reason });
    this.pendingClient.clear();
    this.ctx.session.close(status, reason);
  }

  private async batch(list: unknown[], raw: Buffer): Promise<Verdict> {
    // Batches (protocol 2025-03-26) are recorded message by message. One holding a command is
    // refused whole: a command is decided on its own, and part of a line cannot be forwarded.
    const commands = list.filter((m) => isObject(m) && typeof m.method === 'string' && COMMAND_METHODS.has(m.method) && idKey(m.id) !== null);
    if (commands.length) {
      this.event('mcp.batch', 'client→upstream', { refused: true, ...this.head(raw) });
      const answers: JsonRpcMessage[] = [];
      for (const m of list) {
        if (isObject(m) && idKey(m.id) !== null && typeof m.method === 'string') {
          answers.push({ jsonrpc: '2.0', id: m.id as Json, error: { code: MCP_ERRORS.blocked, message: `flightlog: ${m.method} is not relayed inside a JSON-RPC batch; send it on its own` } });
        }
      }
      return answers.length ? { action: 'answer', message: answers } : DROP;
    }
    for (const m of list) await this.clientMessage(m, Buffer.from(JSON.stringify(m)));
    return FORWARD;
  }

  private clientNotification(method: string, m: Record<string, unknown>, raw: Buffer): Verdict {
    let commandId: number | undefined;
    let verdict: FinalVerdict = FORWARD;
    if (method === 'notifications/cancelled' && isObject(m.params)) {
      const key = idKey(m.params.requestId);
      const held = key ? this.held.get(key) : undefined;
      if (key && held) {
        // the server never saw the request: nothing to cancel there
        this.held.delete(key);
        held.hold.cancel();
        held.settle(DROP);
        verdict = DROP;
      }
      const pending = key ? this.pendingClient.get(key) : undefined;
      if (pending?.command) {
        commandId = pending.command.id;
        pending.command.finish({ status: 'cancelled', result: { durationMs: this.since(pending.startedAt) }, error: typeof m.params.reason === 'string' ? m.params.reason : 'cancelled by the client' });
        pending.command = null;
      }
    }
    this.event('mcp.notification', 'client→upstream', this.body(raw, { method, params: (m.params ?? null) as Json }), commandId);
    return verdict;
  }

  private async clientRequest(key: string, method: string, m: Record<string, unknown>, raw: Buffer): Promise<Verdict> {
    if (!COMMAND_METHODS.has(method)) {
      if (method === 'initialize' && isObject(m.params)) {
        this.ctx.session.updateMeta?.({ client: (m.params.clientInfo ?? null) as Json, clientCapabilities: (m.params.capabilities ?? null) as Json });
      }
      this.event('mcp.request', 'client→upstream', this.body(raw, { id: m.id as Json, method, params: (m.params ?? null) as Json }));
      this.pendingClient.set(key, { method, command: null, startedAt: performance.now() });
      return FORWARD;
    }
    const params = isObject(m.params) ? m.params : {};
    const { text, input, detail, tool } = this.commandOf(method, params);
    // a large request (a file written whole) is recorded as a head with its size and digest
    if (raw.length > this.ctx.payloadHead) {
      delete detail.arguments;
      delete detail.params;
      detail.request = this.head(raw);
    }
    const decision = this.ctx.policy(input);
    if (decision.action === 'allow') return this.startForwarding(key, method, m.id as Json, text, detail, tool, params);
    if (decision.action === 'hold' && this.ctx.holdForApproval) {
      const hold = this.ctx.holdForApproval({
        sessionId: this.ctx.session.id,
        identity: this.ctx.identity,
        runId: this.ctx.runId,
        commandText: this.ctx.maskText(this.capped(text)),
        ...holdTerms(decision),
      });
      this.event('mcp.held', 'gateway', { id: m.id as Json, method, approvalId: hold.approval.id, rule: hold.approval.rule });
      let settle!: (v: FinalVerdict) => void;
      const outcome = new Promise<FinalVerdict>((resolve) => (settle = resolve));
      this.held.set(key, { hold, settle });
      void hold.outcome.then(async (o) => {
        if (!this.held.has(key)) return; // cancelled by the client or the session closed
        this.held.delete(key);
        if (this.closed) return settle(DROP);
        if (o.decision !== 'approve') return settle(this.refuse(m.id as Json, method, text, detail, decision, o, hold));
        if (tool && this.changedTools.has(tool)) this.acceptTool(tool);
        const v = await this.startForwarding(key, method, m.id as Json, text, detail, tool, params, (cmdId) => recordApprovalOutcome(this.ctx.session, decision, hold.approval, o, cmdId));
        settle(v);
      });
      return { action: 'hold', outcome };
    }
    return this.refuse(m.id as Json, method, text, detail, decision, null, null);
  }

  private commandOf(method: string, params: Record<string, unknown>): { text: string; input: PolicyInput; detail: { [k: string]: Json }; tool?: string } {
    const base = { connection: this.ctx.connection, protocol: 'mcp' as const, identity: this.ctx.identity, kind: 'mcp' as const };
    const traceparent = traceparentOf(params);
    if (method === 'tools/call') {
      const tool = typeof params.name === 'string' ? params.name : '';
      const args = (params.arguments ?? {}) as Json;
      const text = toolCallText(this.ctx.connection, tool, args);
      const servers = this.serverName && this.serverName !== this.ctx.connection ? [this.ctx.connection, this.serverName] : [this.ctx.connection];
      const changed = this.changedTools.has(tool);
      const detail: { [k: string]: Json } = { method, server: this.ctx.connection, tool, arguments: args, traceparent, toolChanged: changed };
      return { text, tool, detail, input: { ...base, text, mcp: { server: servers, tool, arguments: args, changed } } };
    }
    const name = method === 'resources/read' ? String(params.uri ?? '') : String(params.name ?? '');
    const args = method === 'prompts/get' && params.arguments !== undefined ? ` ${JSON.stringify(params.arguments)}` : '';
    const text = `${this.ctx.connection} ${method} ${name}${args}`;
    const detail: { [k: string]: Json } = { method, server: this.ctx.connection, params: params as Json, traceparent };
    return { text, detail, input: { ...base, text } };
  }

  /** What blame follows: `mcp:CONN/TOOL`, `mcp:CONN/URI` for a resource, `mcp:CONN/prompt/NAME`. */
  private targetsOf(method: string, detail: { [k: string]: Json }): string[] {
    const conn = this.ctx.connection;
    if (method === 'tools/call') return typeof detail.tool === 'string' && detail.tool ? [`mcp:${conn}/${detail.tool}`] : [];
    const p = isObject(detail.params) ? detail.params : {};
    if (method === 'resources/read' && typeof p.uri === 'string') return [`mcp:${conn}/${p.uri}`];
    if (method === 'prompts/get' && typeof p.name === 'string') return [`mcp:${conn}/prompt/${p.name}`];
    return [];
  }

  /** Records the command, waits until it is on disk (fail-closed), then lets it go upstream. */
  private async startForwarding(
    key: string,
    method: string,
    id: Json,
    text: string,
    detail: { [k: string]: Json },
    tool: string | undefined,
    params: Record<string, unknown>,
    afterStart?: (commandId: number) => void,
  ): Promise<FinalVerdict> {
    const s = this.ctx.session;
    let command: CommandHandle;
    try {
      command = s.startCommand({ kind: 'mcp', text: this.capped(text), classification: method === 'tools/call' ? undefined : 'read', targets: this.targetsOf(method, detail), detail: { ...detail, id } });
      afterStart?.(command.id);
      this.event('mcp.request', 'client→upstream', { id, method, command: command.id }, command.id);
      await s.flushed();
    } catch {
      return this.notRecorded({ id, method });
    }
    if (this.closed) {
      command.finish({ status: 'cancelled', error: 'the session ended' });
      return DROP;
    }
    const token = progressTokenOf(params) ?? undefined;
    this.pendingClient.set(key, { method, command, startedAt: performance.now(), tool, progressToken: token });
    if (token) this.progress.set(token, command.id);
    return FORWARD;
  }

  private refuse(id: Json, method: string, text: string, detail: { [k: string]: Json }, decision: PolicyDecision, outcome: ApprovalOutcome | null, hold: HeldCommand | null): FinalVerdict {
    const message = outcome ? deniedMessage(decision.rule, outcome) : blockedMessage(decision);
    try {
      const cmd = this.ctx.session.startCommand({ kind: 'mcp', text: this.capped(text), targets: this.targetsOf(method, detail), detail: { ...detail, id } });
      if (outcome && hold) recordApprovalOutcome(this.ctx.session, decision, hold.approval, outcome, cmd.id);
      else this.ctx.session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, text) });
      cmd.finish({ status: 'blocked', error: message });
    } catch {
      // the refusal stands whether or not it could be recorded
    }
    // A tool call refused is a tool result the model reads (isError), like any failing tool;
    // other requests get a JSON-RPC error.
    if (method === 'tools/call') return { action: 'answer', message: { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: message }], isError: true } } };
    return { action: 'answer', message: { jsonrpc: '2.0', id, error: { code: MCP_ERRORS.blocked, message } } };
  }

  private notRecorded(m: Record<string, unknown> | unknown[]): FinalVerdict {
    const id = isObject(m) ? idKey(m.id) : null;
    if (id === null || !isObject(m) || typeof m.method !== 'string') return DROP;
    return { action: 'answer', message: { jsonrpc: '2.0', id: m.id as Json, error: { code: MCP_ERRORS.notRecorded, message: 'flightlog: the recording store failed; nothing is forwarded until the gateway is restarted' } } };
  }

  private response(pending: PendingClientRequest, m: Record<string, unknown>, raw: Buffer): void {
    const durationMs = this.since(pending.startedAt);
    if (pending.progressToken) this.progress.delete(pending.progressToken);
    const error = isObject(m.error) ? m.error : null;
    if (pending.command) {
      let status: CommandStatus = 'ok';
      let result: Json;
      if (error) {
        status = 'error';
        result = { error: error as Json, durationMs };
      } else if (raw.length > this.ctx.payloadHead) {
        const r = isObject(m.result) ? m.result : {};
        if (r.isError === true) status = 'error';
        result = { ...this.head(raw), isError: r.isError === true, durationMs };
      } else {
        const r = (isObject(m.result) ? m.result : {}) as { [k: string]: Json };
        if (r.isError === true) status = 'error';
        result = { ...r, isError: r.isError === true, durationMs };
      }
      this.event('mcp.response', 'upstream→client', { id: (m.id ?? null) as Json, method: pending.method, command: pending.command.id }, pending.command.id);
      pending.command.finish({ status, result, error: error && typeof error.message === 'string' ? error.message : undefined });
      return;
    }
    this.event('mcp.response', 'upstream→client', this.body(raw, { id: (m.id ?? null) as Json, method: pending.method, result: (m.result ?? null) as Json, error: (error ?? null) as Json, durationMs }));
    if (error || !isObject(m.result)) return;
    if (pending.method === 'initialize') this.initialized(m.result);
    else if (pending.method === 'tools/list') this.toolsListed(m.result);
  }

  private initialized(result: Record<string, unknown>): void {
    const info = isObject(result.serverInfo) ? result.serverInfo : {};
    this.serverName = typeof info.name === 'string' ? info.name : null;
    this.ctx.session.updateMeta?.({ server: info as Json, protocolVersion: (result.protocolVersion ?? null) as Json, serverCapabilities: (result.capabilities ?? null) as Json });
  }

  /** Compares each listed tool with the accepted definition and with what this session saw. */
  private toolsListed(result: Record<string, unknown>): void {
    const baselines = this.ctx.tools;
    if (!baselines || !Array.isArray(result.tools)) return;
    for (const entry of result.tools) {
      const raw = toolDefinition(entry);
      if (!raw) continue;
      const def = baselines.mask(raw);
      const fingerprint = fingerprintTool(def);
      const seen = this.seenTools.get(def.name);
      this.seenTools.set(def.name, { def, fingerprint });
      if (seen?.fingerprint === fingerprint) continue;
      const accepted = baselines.get(def.name);
      if (!accepted) {
        baselines.accept(def);
        continue;
      }
      if (accepted.fingerprint === fingerprint) {
        this.changedTools.delete(def.name);
        continue;
      }
      // changed from what this session saw, or from the accepted definition on first sight
      const before = seen && seen.fingerprint !== accepted.fingerprint ? seen.def : accepted.definition;
      this.changedTools.add(def.name);
      this.ctx.session.finding({
        category: 'guardrail',
        kind: 'tool-changed',
        direction: 'upstream→client',
        detail: { tool: def.name, server: this.ctx.connection, before: before as unknown as Json, after: def as unknown as Json, changes: diffTool(before, def) as unknown as Json, acceptedFingerprint: accepted.fingerprint, fingerprint },
      });
    }
  }

  /** A human approved a call to a changed tool: its new definition is the accepted one from now on. */
  private acceptTool(tool: string): void {
    const seen = this.seenTools.get(tool);
    if (seen && this.ctx.tools) this.ctx.tools.accept(seen.def);
    this.changedTools.delete(tool);
    this.event('mcp.tool-accepted', 'gateway', { tool, fingerprint: seen?.fingerprint ?? null });
  }

  private event(kind: string, direction: Direction, data: Json, commandId?: number): void {
    this.ctx.session.event(kind, direction, data, commandId === undefined ? undefined : { commandId });
  }

  /** The message as recorded: whole, or a head with size and digest when it is large. */
  private body(raw: Buffer, whole: { [k: string]: Json }): Json {
    if (raw.length <= this.ctx.payloadHead) return whole;
    return { id: whole.id ?? null, method: whole.method ?? null, ...this.head(raw) };
  }

  private head(raw: Buffer): { [k: string]: Json } {
    if (raw.length <= this.ctx.payloadHead) return { text: raw.toString('utf8') };
    return { truncated: true, bytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex'), head: cutHead(raw, this.ctx.payloadHead).toString('utf8') };
  }

  private capped(text: string): string {
    return text.length > this.ctx.payloadHead ? text.slice(0, this.ctx.payloadHead) + '…' : text;
  }

  private since(t: number): number {
    return Math.round((performance.now() - t) * 1000) / 1000;
  }
}
