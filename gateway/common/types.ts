/**
 * The seams of the per-message pipeline: parse → policy → mask → record → forward.
 * Pure types: no Node or DOM imports, so every room of the gateway (and tests) can share them.
 */

export type Protocol = 'postgres' | 'ssh' | 'http' | 'kubernetes' | 'mcp';

/** Which way a recorded fact travelled. */
export type Direction = 'client→upstream' | 'upstream→client' | 'gateway';

export type CommandKind = 'sql' | 'shell' | 'exec' | 'http' | 'llm' | 'kubectl' | 'sftp' | 'forward' | 'mcp';

export type CommandStatus = 'running' | 'ok' | 'error' | 'blocked' | 'cancelled';

export type SessionStatus = 'live' | 'closed' | 'failed' | 'error';

/** A JSON value as it is stored (after masking). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** One secret sighting reported by the masking engine. */
export interface SecretHit {
  kind: string;
  /** short keyed fingerprint: equal secrets give equal fingerprints */
  fp: string;
}

/** What the masking engine gives back for one text. */
export interface MaskResult {
  text: string;
  hits: SecretHit[];
}

/**
 * The masking engine as the recorder and listeners see it. Implemented in gateway/masking.
 * `maskText` must be pure given the engine's configuration (known secrets, fingerprint key).
 */
export interface Masker {
  maskText(text: string): MaskResult;
  /**
   * Masks a structured value (rows, JSON bodies, headers): every string inside is scanned,
   * and values under keys that name a secret (password, token, …) are masked whole.
   */
  maskValue(value: Json, keyHint?: string): { value: Json; hits: SecretHit[] };
  /** Registers a value the gateway knows is secret (an injected credential, a token). */
  addKnownSecret(kind: string, value: string): void;
  /** The masked form of one known value: `[MASKED:kind:fp]`. */
  placeholder(kind: string, value: string): string;
}

/** A policy decision for one command. Policy is a pure function of the command and the rule set. */
export interface PolicyDecision {
  /** `block` is a rule's `deny` */
  action: 'allow' | 'block' | 'hold';
  rule?: string;
  reason?: string;
  /** SHA-256 of the rule set that decided (see gateway/policy/rules.ts) */
  rulesVersion?: string;
  /** for hold: seconds to wait for a human before denying */
  timeoutSeconds?: number;
}

export interface PolicyInput {
  connection: string;
  protocol: Protocol;
  identity: string;
  kind: CommandKind;
  text: string;
  /** statement classification where known: read, write, ddl, transaction, other */
  classification?: string;
  /** for HTTP requests: the method and the path without the query string */
  http?: { method: string; path: string };
  /** for model calls: the tools the model asked to call */
  tools?: string[];
  /** for SFTP requests: the operation and the absolute, normalized path; `target` is a rename's new path */
  sftp?: { op: string; path: string; target?: string };
  /** for MCP tool calls: the server (connection and the server's own name), the tool, its arguments, and whether its definition changed */
  mcp?: { server: string[]; tool: string; arguments: Json; changed: boolean };
  /** for Kubernetes API requests: the verb as kubectl says it (see policyVerb), plural resource, group, namespace, name */
  kubernetes?: { verb: string; resource: string; group: string; namespace: string; name: string };
}

export type Policy = (input: PolicyInput) => PolicyDecision;

/** What a listener learns when it opens a session; ids are assigned by the recorder. */
export interface SessionOpen {
  connection: string;
  protocol: Protocol;
  identity: string | null;
  runId?: string | null;
  clientAddr?: string;
  /** AuthResult.via: the session's commands link to the MCP tool call in flight there */
  via?: string;
  /** protocol facts worth keeping: database, user, client application, pty… */
  meta?: Record<string, Json>;
}

export interface CommandStart {
  kind: CommandKind;
  /** the text a reviewer reads: the SQL, the shell line, `GET /path`, the model and last prompt */
  text: string;
  /** read, write, ddl, transaction, other — where the protocol can tell */
  classification?: string;
  /** tables, paths or resources the command touches */
  targets?: string[];
  detail?: Json;
  /** the command this one was caused by (lineage), if known */
  causedBy?: number | null;
}

export interface CommandFinish {
  status: CommandStatus;
  /** the recorded result: {columns, rows, rowCount, tag} | {exitCode, signal} | {status, headers, body} … */
  result?: Json;
  error?: string;
  /**
   * Parts of the result the upstream did not send, by dotted path (`requestBody`, `stdin`,
   * `diff.after`) and who did: a secret found only there is a finding in that direction (an
   * uploaded file is `client→upstream`, never "seen by agent"). The rest came from upstream.
   */
  resultFrom?: Record<string, Direction>;
}

export interface CommandHandle {
  readonly id: number;
  finish(finish: CommandFinish): void;
}

/**
 * A live session as a listener sees it: the only way a listener writes to the store.
 * Every data argument is masked by the recorder before it is stored; findings for secrets
 * found there are recorded automatically with the given direction and current command.
 */
export interface SessionRecorder {
  readonly id: string;
  /** Appends one event; returns its seq. Synchronous: durability comes from `flushed()`. */
  event(kind: string, direction: Direction, data: Json, opts?: { commandId?: number; maskedLive?: boolean }): number;
  startCommand(start: CommandStart): CommandHandle;
  /** Records a finding that is not a masking hit, e.g. a guardrail decision or a failed login. */
  finding(f: { category: 'secret' | 'guardrail' | 'auth'; kind: string; fp?: string; direction: Direction; commandId?: number; maskedLive?: boolean; detail?: Json }): void;
  /**
   * Resolves once every event appended so far is committed to disk; rejects if the store failed.
   * Listeners await it before forwarding a command (the record is accepted first: fail-closed);
   * the commit is cut at once and covers everything appended in the same turn.
   */
  flushed(): Promise<void>;
  /** True once the store has failed for this session: the listener must stop forwarding new commands. */
  readonly failed: boolean;
  /** Ends the session and seals its hash chain. Idempotent. */
  close(status?: SessionStatus, reason?: string): void;
  /**
   * How the listener cuts this session's connection when the gateway ends it (token revoked, run
   * ended): tell the client `message` in the protocol's way and stop forwarding at once. The
   * recorder closes the session with `reason` right after the handler returns.
   */
  onTerminate(handler: (reason: string, message: string) => void): void;
  /** Adds facts learned after the session opened to its meta (masked; record them as an event too). */
  updateMeta?(patch: Record<string, Json>): void;
}

/** How an agent proved who it is. */
export type Credential = { token: string } | { publicKey: { algo: string; data: Uint8Array } };

export interface AuthResult {
  ok: boolean;
  identity?: string;
  /** the run this credential belongs to (a token minted by `flightlog run`): pass it to openSession */
  runId?: string;
  /** the MCP session whose server this credential was minted for (`upstream.via`): pass it to openSession */
  via?: string;
  /** 'bad-credential' | 'revoked' | 'not-allowed' */
  reason?: 'bad-credential' | 'revoked' | 'not-allowed' | 'unknown-identity';
  message?: string;
}
