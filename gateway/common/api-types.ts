/**
 * The control API's request and result types: one module shared by the gateway, the CLI's
 * `--json` output and the renderer (which imports it type-only). Pure types.
 */
import type { CommandKind, CommandStatus, Direction, Json, Protocol, SessionStatus } from './types';
import type { Upstream } from './config-schema';

export interface SessionSummary {
  id: string;
  identity: string | null;
  connection: string;
  protocol: Protocol;
  run: string | null;
  clientAddr: string | null;
  startedAt: string;
  endedAt: string | null;
  /** milliseconds, null while live */
  durationMs: number | null;
  status: SessionStatus;
  endReason: string | null;
  eventCount: number;
  commandCount: number;
  findingCount: number;
  sealed: boolean;
}

export interface CommandView {
  id: number;
  sessionId: string;
  index: number;
  kind: CommandKind;
  text: string;
  classification: string | null;
  targets: string[];
  status: CommandStatus;
  startedAt: string;
  /** microseconds from the session start */
  startUs: number;
  endUs: number | null;
  durationMs: number | null;
  startSeq: number | null;
  endSeq: number | null;
  detail: Json | null;
  /** rows, rowCount, tag | exitCode, signal | status, headers, body … (masked) */
  result: Json | null;
  error: string | null;
  /** the command (e.g. a model call) that caused this one */
  causedBy: number | null;
  /** commands this one caused */
  caused: number[];
}

export interface FindingView {
  id: number;
  sessionId: string | null;
  commandId: number | null;
  /** the command's number in its session (`#1`), where the finding is on a command of the store */
  commandIndex?: number | null;
  eventSeq: number | null;
  category: 'secret' | 'guardrail' | 'auth';
  kind: string;
  fp: string | null;
  direction: Direction;
  /** true when the sighting travelled to the agent (upstream→client) */
  seenByAgent: boolean;
  maskedLive: boolean;
  detail: Json | null;
  createdAt: string;
}

/** The result of checking a session against its hash chain when it is shown (`sealed` is true only when it passed). */
export interface SessionIntegrityView {
  state: 'verified' | 'live' | 'legacy' | 'bad';
  message: string;
}

export interface SessionDetail extends SessionSummary {
  /** set by the control API: chain, seal and rows checked as the session is shown */
  integrity?: SessionIntegrityView;
  meta: Json;
  seal: string | null;
  sealKey: string | null;
  lastHash: string | null;
  commands: CommandView[];
  findings: FindingView[];
}

export interface EventView {
  seq: number;
  tUs: number;
  wall: string;
  kind: string;
  direction: Direction;
  commandId: number | null;
  data: Json;
  hash: string;
}

export interface SearchHit {
  sessionId: string;
  commandId: number;
  kind: CommandKind;
  text: string;
  snippet: string;
  startedAt: string;
  connection: string;
  identity: string | null;
}

export interface RunView {
  id: string;
  identity: string | null;
  argv: string[];
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  sessions: SessionSummary[];
  /** what the run did (the control API and `flightlog runs` add it) */
  counts?: RunCounts;
}

export interface IdentityView {
  name: string;
  kind: 'agent' | 'human';
  createdAt: string;
  revokedAt: string | null;
  tokens: number;
  keys: string[];
}

export interface SessionListQuery {
  limit?: number;
  offset?: number;
  identity?: string;
  connection?: string;
  protocol?: string;
  status?: string;
  run?: string;
  /** the column to order by (default `started`, newest first) */
  sort?: SessionSortKey;
  order?: 'asc' | 'desc';
}

/** The sessions list's sortable columns. */
export type SessionSortKey = 'started' | 'status' | 'identity' | 'connection' | 'protocol' | 'run' | 'duration' | 'commands' | 'findings' | 'session';

/* The routes, their params and results: gateway/common/routes.ts (one map for the server and the renderer). */

export interface GatewayStatus {
  version: string;
  dataDir: string;
  keyFingerprint: string;
  listeners: Array<{ connection: string; protocol: Protocol; address: string | null; error: string | null; llm?: 'anthropic' | 'openai'; identities: string[] }>;
  liveSessions: number;
  /**
   * The recording store's writer: `ok: false` once a commit failed (disk full, I/O error); from
   * then on no command is forwarded (fail-closed) until the gateway is restarted. Absent for bundles.
   */
  store?: { ok: boolean; error: string | null; since: string | null };
  /** set when the UI shows opened bundles (read-only) instead of a live store */
  bundles?: BundleStatus[];
}

/** One opened bundle and its verdict, as `flightlog open` shows it. */
export interface BundleStatus {
  file: string;
  verified: boolean;
  signer: string | null;
  trusted: boolean;
  trustedAs: string | null;
  sessions: number;
  events: number;
  /** the verdict line: `verified: …` or `not verified: …` */
  message: string;
  /** the one verdict every badge shows: green only for `trusted`, amber `unknown`, red `tampered` */
  trust: BundleTrust;
}

/** `POST /api/runs` {identity, argv, pid} → the run's id, its own token and where each listener is. */
export interface RunStartResult {
  runId: string;
  token: string;
  listeners: GatewayStatus['listeners'];
}

/**
 * The live feed's WebSocket subprotocol. A browser cannot set headers on a WebSocket, so the
 * token travels as a second offered subprotocol, `bearer.<token>`; the server echoes only this one.
 */
export type LiveProtocol = 'flightlog.v1';

/** Live feed messages on `GET /api/live` (WebSocket). */
export type LiveMessage =
  | { type: 'session'; sessionId: string; status: SessionStatus }
  | { type: 'events'; sessionId: string; fromSeq: number; toSeq: number }
  | { type: 'command'; sessionId: string; commandId: number }
  | { type: 'finding'; sessionId: string | null; kind: string }
  /** a command a guardrail held was put in front of a human (`pending`) or decided */
  | { type: 'approval'; sessionId: string; id: string; state: 'pending' | 'approved' | 'denied'; by?: string };

/** A command a guardrail held, waiting for a human: `GET /api/approvals` lists these. */
export interface PendingApproval {
  /** `apr_` + 10 base32 characters */
  id: string;
  sessionId: string;
  connection: string;
  protocol: Protocol;
  identity: string;
  runId: string | null;
  /** as recorded: masked */
  commandText: string;
  commandSha256: string;
  rule: string;
  reason: string | null;
  rulesVersion: string | null;
  createdAt: string;
  expiresAt: string;
  /** SQL holds: the tables the statement names */
  tables?: string[];
  /**
   * SQL holds: the planner's estimate from `EXPLAIN (FORMAT JSON)` (run by the gateway in a
   * read-only transaction on its own connection): rows of the top plan node and its type.
   * null when no estimate could be made; `estimateError` says why.
   */
  estimate?: { rows: number; node: string } | null;
  estimateError?: string;
  /**
   * The model reply whose tool call asked for this command (same run, or same identity without
   * a run): the llm command's id, session and masked text (`model: prompt`, shortened).
   */
  causedBy?: { commandId: number; sessionId: string; text: string } | null;
}

/** Body of `POST /api/approvals/:id`. */
export interface ApprovalDecisionInput {
  decision: 'approve' | 'deny';
  reason?: string;
  /** `run`: also approve later holds by the same rule in the same run, until the run ends */
  scope?: 'run';
}

/** Answer of `POST /api/approvals/:id`. */
export interface ApprovalDecisionResult {
  id: string;
  decision: 'approve' | 'deny';
  by: string;
  scope?: 'run';
}

/** Error body of every failed request. */
export interface ApiError {
  error: { code: string; message: string };
}

/** A connection as flightlog.yaml spells it: what Settings shows and edits. Secrets are references, never values. */
export interface ConnectionInput {
  name: string;
  protocol: Protocol;
  /** host:port */
  listen: string;
  upstream: Upstream;
  identities: string[];
  mask?: 'record' | 'live';
  llm?: 'anthropic' | 'openai';
  options?: { [key: string]: Json };
  /** sessions older than this are removed by `flightlog gc` (`30d`; h, d, w) */
  retention?: string;
}

/** `GET /api/settings`: the running config's connections, the identities, and how to route an agent. */
export interface SettingsSnapshot {
  /** the YAML file Settings writes back to */
  configFile: string;
  /** false until the first write creates it */
  configExists: boolean;
  connections: ConnectionInput[];
  identities: IdentityView[];
  listeners: GatewayStatus['listeners'];
  /** `flightlog run`, plus `--data-dir DIR` when the gateway's data dir is not the default one */
  runCommand: string;
}

/** `POST /api/settings/connections`: add a connection, or replace the one named `replaces` (else the one of the same name). Answers a SettingsSnapshot. */
export interface SaveConnectionRequest {
  connection: ConnectionInput;
  replaces?: string;
}

/** `POST /api/identities`. */
export interface CreateIdentityRequest {
  name: string;
  kind: 'agent' | 'human';
}

/** The new identity's token: shown this once, only its hash is kept. */
export interface CreateIdentityResult {
  name: string;
  kind: 'agent' | 'human';
  token: string;
}

/** `GET /api/settings/guardrails`, and the answer of `PUT`: the `guardrails:` key as written in flightlog.yaml and the running rule set's version. */
export interface GuardrailsSettings {
  /** YAML with the one key `guardrails:` (comments kept); empty when the file has no rules */
  yaml: string;
  /** SHA-256 of the running rules, as recorded with every decision */
  version: string;
  /** how many rules run now */
  rules: number;
  /** the YAML file the rules are written to */
  configFile: string;
}

/** Body of `PUT /api/settings/guardrails`: replaces only the file's `guardrails:` key. Answers GuardrailsSettings. */
export interface SaveGuardrailsRequest {
  yaml: string;
}

/**
 * A refused Settings write: `path` names the field in the document (`connections[0].upstream.url`)
 * when the config validator refused it; `line` is the line within the submitted text (guardrails).
 */
export interface SettingsApiError {
  error: { code: string; message: string; path?: string; line?: number };
}

/** An opened bundle's verdict: `tampered` (a check failed), `unknown` (intact, signer not trusted), `trusted`. */
export type BundleTrust = 'trusted' | 'unknown' | 'tampered';

/**
 * Body of `POST /api/bundles/trust` (the viewer's "Trust this key…", after the user confirmed):
 * adds the key that signed `file` to the trust store, if it still has `fingerprint`.
 */
export interface TrustBundleKeyRequest {
  file: string;
  fingerprint: string;
  name: string;
}

/** The answer: every opened bundle, verified again against the trust store. */
export interface TrustBundleKeyResult {
  trusted: { name: string; fingerprint: string };
  bundles: BundleStatus[];
}

/* ───── Setup (issue 18): Test connection, secrets stored by Flightlog, every field error at once, a pasteable run line ───── */

/** `POST /api/settings/connections/test` ({connection} as the form has it, or {name} of a saved one): the gateway logs in upstream once. */
export interface ConnectionTestResult {
  connection: string;
  protocol: Protocol;
  ok: boolean;
  /** what the upstream said, one line, masked: `logged in to PostgreSQL 15.8 at …` or its exact error */
  message: string;
  /** `PostgreSQL 15.8`, `OpenSSH_9.2p1 Debian-2` */
  serverVersion?: string;
  /** SSH: the key the server presented; `new` is pinned on the listener's first login, `changed` is refused */
  hostKey?: { fingerprint: string; type: string; state: 'pinned' | 'new' | 'changed' };
  testedAt: string;
  ms: number;
}

export interface TestConnectionRequest {
  connection?: ConnectionInput;
  name?: string;
}

/** `POST /api/settings/secrets`: Flightlog keeps the value in `<dataDir>/secrets/NAME` (0600); never echoed back. */
export interface StoreSecretRequest {
  name: string;
  value: string;
}

export interface StoreSecretResult {
  name: string;
  /** what flightlog.yaml references: `{ file: <dataDir>/secrets/NAME }` */
  ref: { file: string };
  /** also masked by value wherever it shows up (values of 8 characters or more) */
  registered: boolean;
}

/** One refused form field: `field` is its path inside the connection (`upstream.host`), `message` says it in the form's words. */
export interface SettingsFieldError {
  field: string;
  message: string;
  /** `E_SECRET_MISSING`: an `{ env: NAME }` the gateway's environment lacks (NAME in `variable`) */
  code?: string;
  variable?: string;
}

/** A refused connection save or test: the validator's one line as before, plus every field it refused. */
export interface SettingsFieldsError {
  error: { code: string; message: string; path?: string; fields: SettingsFieldError[] };
}

/** How the copyable `flightlog run` line finds Flightlog from a shell. */
export interface RunLineHelp {
  /** `path`: `flightlog` is on PATH; `npx`: run from the project directory `cwd`; `node`: the absolute path of this install */
  via: 'path' | 'npx' | 'node';
  /** the directory the `npx` line works from */
  cwd: string | null;
  /** the same line for any directory (node and the absolute path of bin/flightlog.js) */
  anywhere: string;
  /** how to type plain `flightlog`: `npm link` in this install, or a packaged install */
  onPath: string;
}

export interface SettingsSnapshot {
  runHelp?: RunLineHelp;
  /** the last Test connection of each connection (also run on every save) */
  tests?: Record<string, ConnectionTestResult>;
}

/* ---- object blame and run timelines (issue 17): GET /api/blame?target=&since=, GET /api/runs/ID ---- */

export type BlameTarget =
  | { type: 'table'; schema: string; name: string }
  | { type: 'file'; host: string; path: string }
  | { type: 'http'; connection: string; pattern: string }
  | { type: 'k8s'; resource: string; namespace: string; name: string };

export interface BlameCause {
  commandId: number;
  sessionId: string;
  /** the model call as its session numbers it */
  index: number;
  /** the (masked) model call text, the human's prompt without injected reminders */
  text: string;
}

export interface BlameChange {
  /** SFTP or Kubernetes content before and after; null when the object did not exist */
  before?: string | null;
  after?: string | null;
  /** why no before/after is known (binary, too large, no snapshot) */
  unavailable?: string;
  /** SQL: rows the statement reported (its command tag) */
  rowCount?: number | null;
  tag?: string | null;
}

export interface BlameEntry {
  commandId: number;
  at: string;
  identity: string | null;
  run: string | null;
  sessionId: string;
  /** the command as its session numbers it (#1, #2, …) */
  index: number;
  connection: string;
  protocol: string;
  kind: CommandKind;
  access: 'read' | 'write';
  text: string;
  status: string;
  error: string | null;
  cause: BlameCause | null;
  change: BlameChange | null;
  /** the first write after the "last known good" time (--since) */
  firstWriteSince: boolean;
}

export interface BlameReport {
  /** the target in its canonical form (`orders` → `table:public.orders`) */
  target: string;
  since: string | null;
  entries: BlameEntry[];
}

export interface RunCounts {
  commands: number;
  /** commands that changed something: SQL writes and DDL, HTTP writes, SFTP writes, shell lines that write files */
  writes: number;
  findings: number;
  /** commands a guardrail refused (denied, or held and then denied or timed out) */
  blocked: number;
  /** commands a guardrail held for a human, whatever the human decided */
  held: number;
}

export interface RunToolCall {
  name: string;
  arguments: string;
}

export interface RunCommandStep {
  type: 'command';
  /** this command succeeded where an earlier one of the same shape (kind, normalised text) failed in the run */
  retryOf?: number;
  /** this command failed and a later one of the same shape succeeded in the run */
  retriedBy?: number;
  at: string;
  commandId: number;
  sessionId: string;
  /** the command as its session numbers it */
  index: number;
  connection: string;
  protocol: string;
  kind: string;
  /** for a model call, the human's prompt without injected reminders */
  text: string;
  classification: string | null;
  write: boolean;
  status: string;
  error: string | null;
  durationMs: number | null;
  targets: string[];
  /** a one-line result: rows, exit code, HTTP status */
  summary: string | null;
  /** model calls: the reply's text and the tool calls it asked for */
  reply: string | null;
  toolCalls: RunToolCall[];
  /** lineage: the model call that caused this command, and the commands this one caused */
  causedBy: number | null;
  caused: number[];
  /** microseconds from its session's start: where the session's replay shows it */
  startUs?: number;
  /** model calls: files the agent edits on its own machine (Edit, MultiEdit, Write, apply_patch), target file:local:PATH */
  edits?: Array<{ tool: string; path: string; before: string | null; after: string | null }>;
}

export interface RunFindingStep {
  type: 'finding';
  at: string;
  findingId: number;
  sessionId: string | null;
  commandId: number | null;
  /** the command as its session numbers it, so "#3" here is "#3" in the session view */
  commandIndex: number | null;
  category: string;
  kind: string;
  direction: string;
  /** guardrail decisions: deny, hold or allow, and how it ended */
  action: string | null;
  outcome: string | null;
}

export type RunStep = RunCommandStep | RunFindingStep;

export interface RunTimeline {
  id: string;
  identity: string | null;
  argv: string[];
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  counts: RunCounts;
  sessions: Array<{ id: string; connection: string; protocol: string; startedAt: string; endedAt: string | null; status: string; commandCount: number }>;
  steps: RunStep[];
}
