/** The shape of a guardrail rule in flightlog.yaml, after validation. Pure types, shared with the renderer. */
import type { CommandKind, Protocol } from './types';

export type GuardrailAction = 'allow' | 'deny' | 'hold';

/** The SFTP operations a rule can name; `write` and `read` are opens for writing or reading only. */
export type SftpOp = 'write' | 'remove' | 'rename' | 'mkdir' | 'rmdir' | 'setstat' | 'read';

/** One rule as written in flightlog.yaml (after validation). */
export interface GuardrailRule {
  name: string;
  match: GuardrailMatch;
  action: GuardrailAction;
  reason?: string;
  /** how long a held command waits for a human before it is denied (seconds, default 300) */
  timeoutSeconds?: number;
}

export interface GuardrailMatch {
  connection?: string;
  identity?: string;
  protocol?: Protocol[];
  kind?: CommandKind[];
  classification?: string[];
  /** a regular expression over the command text (the escape hatch) */
  text?: string;
  sql?: { statement?: string[]; where?: 'absent' | 'present'; tables?: string[] };
  shell?: { program?: string[]; flags?: string[]; args?: string[] };
  http?: { method?: string[]; path?: string };
  llm?: { tool?: string[] };
  /** SFTP requests: the operation and globs over the absolute path (`*` crosses `/`); a rename matches on either path */
  sftp?: { op?: SftpOp[]; path?: string[] };
  /**
   * Kubernetes API requests: kubectl's verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`
   * (also a collection), `deletecollection`, `exec`, `attach`, `port-forward`, `logs`, `scale`), and globs
   * over the resource (plural, singular or `resource.group`), namespace and name
   */
  kubernetes?: { verb?: string[]; resource?: string[]; namespace?: string[]; name?: string[] };
  /**
   * MCP tool calls: globs over the server (the connection's name or the server's own name) and the
   * tool; `arguments` maps a dotted path in the call's arguments to globs over its value
   * (case-insensitive; a non-string value is matched as JSON); `changed: true` matches a tool whose
   * definition differs from the accepted one (tool drift).
   */
  mcp?: { server?: string[]; tool?: string[]; arguments?: Record<string, string[]>; changed?: boolean };
}

