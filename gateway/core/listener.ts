import type { ConnectionConfig, RecordingConfig } from '../common/config-schema';
import type { ApprovalRequest, HeldCommand } from '../approvals';
import type { AuthResult, Credential, Masker, Policy, SessionOpen, SessionRecorder } from '../common/types';

/** Logs one line per call; never pass raw secrets (messages are masked anyway as a second line of defence). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** Everything a protocol listener may use. It never sees the store itself. */
export interface ListenerContext {
  connection: ConnectionConfig;
  recording: RecordingConfig;
  /** data dir, for the listener's own files (TLS certs, pinned host keys) */
  dataDir: string;
  /** the flightlog.yaml the connection came from: relative paths in it (a CA file, a kubeconfig) are read from its directory */
  configFile?: string | null;
  /** resolved upstream secret values by name (password, privateKey, headers…), read from env or file at start */
  secrets: Record<string, string>;
  masker: Masker;
  policy: Policy;
  log: Logger;
  /** Checks a gateway credential for an identity and whether that identity may use this connection. */
  authenticate(identity: string, credential: Credential): AuthResult;
  /**
   * SCRAM-SHA-256 verifiers (StoredKey/ServerKey, as pg_authid keeps them) of an identity's tokens,
   * all under one salt; null when the identity must use cleartext (unknown, or tokens older than
   * verifiers). Nothing here lets anyone log in. Optional: listeners fall back to cleartext.
   */
  scramVerifiers?(identity: string): ScramVerifierSet | null;
  /**
   * Whether a name is an identity at all (revoked ones included). A listener offering SCRAM answers
   * other names with a mock exchange, so a stranger cannot enumerate identities.
   */
  knownIdentity?(identity: string): boolean;
  /** After a SCRAM proof matched `tokenId`: checks revocation and this connection's allow-list, like authenticate(). */
  authenticateScramToken?(identity: string, tokenId: number): AuthResult;
  /** Opens a session in the store; the listener must close it. */
  openSession(open: Omit<SessionOpen, 'connection' | 'protocol'>): SessionRecorder;
  /**
   * Puts a command a guardrail held in front of a human; the listener waits on its outcome.
   * Absent (tests, read-only tools): a hold is denied.
   */
  holdForApproval?(req: Omit<ApprovalRequest, 'connection' | 'protocol'>): HeldCommand;
  /**
   * MCP `upstream.via`: a token of the identity (and run) for one MCP server child, valid on the
   * named connection's listener while the session lives; sessions opened with it carry `via`
   * (bind() names the MCP session once it is open). Null when that connection has no listener.
   */
  viaCredential?(connection: string, identity: string, runId: string | null): ViaCredential | null;
  /** Records a failed login attempt (no session is kept open for it). */
  recordFailedAttempt(attempt: { identity: string | null; clientAddr?: string; reason: string }): void;
}

export interface ViaCredential {
  /** host:port of the connection's listener */
  address: string;
  token: string;
  bind(mcpSessionId: string): void;
  /** the token stops working (the server's child has exited) */
  release(): void;
}

export interface ScramVerifierSet {
  salt: Buffer;
  iterations: number;
  verifiers: Array<{ tokenId: number; storedKey: Buffer; serverKey: Buffer }>;
}

export interface Listener {
  /** host:port actually bound */
  readonly address: string;
  /** Stops accepting, ends every open session (closing and sealing it), resolves when done. */
  close(): Promise<void>;
}

export type StartListener = (ctx: ListenerContext) => Promise<Listener>;
