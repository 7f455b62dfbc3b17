/**
 * The code an agent wrote on the contractor's machine: Claude Code's `Edit`/`MultiEdit`/`Write`
 * and OpenAI's `apply_patch` never pass a listener, but their arguments are in the recorded (and
 * already masked) model replies. Each becomes a before/after on `file:local:PATH`.
 */

export interface AgentFileEdit {
  tool: string;
  path: string;
  /** the text replaced (Edit) or the file's old lines in the hunk (apply_patch); null for a new or written file */
  before: string | null;
  /** null when the file is deleted */
  after: string | null;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

function args(raw: unknown): Rec | string | null {
  if (isRec(raw)) return raw;
  if (typeof raw !== 'string') return null;
  try {
    const v = JSON.parse(raw) as unknown;
    return isRec(v) ? v : typeof v === 'string' ? v : null;
  } catch {
    return raw; // apply_patch may carry the patch itself as the arguments
  }
}

/** The `*** Begin Patch` format: Add/Update/Delete File sections, hunk lines prefixed ' ', '-', '+'. */
export function parseApplyPatch(patch: string, tool = 'apply_patch'): AgentFileEdit[] {
  const out: AgentFileEdit[] = [];
  let cur: { path: string; mode: 'add' | 'update' | 'delete'; before: string[]; after: string[] } | null = null;
  const flush = () => {
    if (!cur) return;
    out.push({ tool, path: cur.path, before: cur.mode === 'add' ? null : cur.before.join('\n'), after: cur.mode === 'delete' ? null : cur.after.join('\n') });
    cur = null;
  };
  for (const line of patch.split('\n')) {
    const m = /^\*\*\* (Add|Update|Delete) File: (.+)$/.exec(line);
    if (m) {
      flush();
      cur = { path: m[2].trim(), mode: m[1].toLowerCase() as 'add' | 'update' | 'delete', before: [], after: [] };
      continue;
    }
    if (!cur || line.startsWith('*** ') || line.startsWith('@@')) continue;
    const c = line[0];
    if (c === '+') cur.after.push(line.slice(1));
    else if (c === '-') cur.before.push(line.slice(1));
    else if (c === ' ') {
      cur.before.push(line.slice(1));
      cur.after.push(line.slice(1));
    }
  }
  flush();
  return out;
}

/** Edits in one model reply's tool calls, in order. */
export function agentEdits(toolCalls: unknown): AgentFileEdit[] {
  if (!Array.isArray(toolCalls)) return [];
  const out: AgentFileEdit[] = [];
  for (const call of toolCalls) {
    if (!isRec(call)) continue;
    const name = String(call.name ?? '');
    const a = args(call.arguments ?? call.input);
    if (name === 'apply_patch') {
      const patch = typeof a === 'string' ? a : isRec(a) ? (a.input ?? a.patch ?? (isRec(a.operation) ? a.operation.diff : undefined)) : undefined;
      const op = isRec(a) && isRec(a.operation) ? a.operation : null;
      if (op && typeof op.path === 'string' && typeof op.diff === 'string' && !op.diff.includes('*** Begin Patch')) {
        // the Responses API form: one file per call, a unified-style diff of its own
        const [e] = parseApplyPatch(`*** ${op.type === 'create_file' ? 'Add' : op.type === 'delete_file' ? 'Delete' : 'Update'} File: ${op.path}\n${op.diff}`);
        if (e) out.push(e);
      } else if (typeof patch === 'string') out.push(...parseApplyPatch(patch));
      continue;
    }
    if (!isRec(a) || typeof a.file_path !== 'string') continue;
    if (name === 'Edit' && typeof a.old_string === 'string' && typeof a.new_string === 'string') out.push({ tool: name, path: a.file_path, before: a.old_string, after: a.new_string });
    else if (name === 'Write' && typeof a.content === 'string') out.push({ tool: name, path: a.file_path, before: null, after: a.content });
    else if (name === 'MultiEdit' && Array.isArray(a.edits)) {
      for (const e of a.edits) if (isRec(e) && typeof e.old_string === 'string' && typeof e.new_string === 'string') out.push({ tool: name, path: a.file_path, before: e.old_string, after: e.new_string });
    }
  }
  return out;
}
