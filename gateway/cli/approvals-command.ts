/**
 * `flightlog pending | approve ID | deny ID`: the human side of a guardrail hold. Decisions live
 * in the running gateway (the held command waits there), so these talk to its control API.
 */
import { FlightlogError, UsageError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import type { ApprovalDecisionResult, PendingApproval } from '../common/api-types';
import { findRunningGateway } from './run-command';
import { parse, type Io } from './main';

async function request<T>(dataDir: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  const gw = findRunningGateway(dataDir);
  let res: Response;
  try {
    res = await fetch(gw.url + route, {
      method,
      headers: { authorization: `Bearer ${gw.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new FlightlogError('E_NO_GATEWAY', `no gateway answers at ${gw.url} (is it still running?)`);
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!res.ok) throw new FlightlogError(res.status === 404 ? 'E_NOT_FOUND' : 'E_GATEWAY', json.error?.message ?? `gateway answered HTTP ${res.status}`);
  return json as T;
}

function age(iso: string, now: number): string {
  const s = Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Tables and the planner's estimate of a SQL hold, and the model reply that asked for it, as indented lines. */
function sqlLine(a: PendingApproval): string {
  const parts: string[] = [];
  if (a.tables?.length) parts.push(`tables: ${a.tables.join(', ')}`);
  if (a.estimate) parts.push(`estimate: ~${a.estimate.rows} row${a.estimate.rows === 1 ? '' : 's'} (${a.estimate.node})`);
  else if (a.estimate === null) parts.push(`estimate: none (${a.estimateError ?? 'unknown'})`);
  const lines = parts.length ? `    ${JSON.stringify(parts.join('  ')).slice(1, -1)}\n` : '';
  return a.causedBy ? `${lines}    asked by the model reply to: ${JSON.stringify(a.causedBy.text)}\n` : lines;
}

/** One line per held command, its text on its own line (control characters shown escaped). */
export function formatPending(list: PendingApproval[], now = Date.now()): string {
  if (list.length === 0) return 'no commands waiting for approval\n';
  return list
    .map((a) => {
      const text = JSON.stringify(a.commandText.length > 400 ? a.commandText.slice(0, 400) + '…' : a.commandText);
      return `${a.id}  ${a.rule}  ${a.identity}@${a.connection} (${a.protocol})  expires in ${age(a.expiresAt, now)}\n    ${text}\n${sqlLine(a)}`;
    })
    .join('');
}

export async function runPendingCommand(argv: string[], io: Io): Promise<number> {
  const { flags } = parse(argv, { json: { type: 'boolean' } }, 0, 'flightlog pending [--json]');
  const list = await request<PendingApproval[]>(resolveDataDir(flags['data-dir'] as string | undefined, io.env), 'GET', '/api/approvals');
  if (flags.json) io.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else io.stdout.write(formatPending(list));
  return 0;
}

export async function runDecideCommand(decision: 'approve' | 'deny', argv: string[], io: Io): Promise<number> {
  const usage = `flightlog ${decision} ID [--reason TEXT]${decision === 'approve' ? ' [--for-run]' : ''}`;
  const { flags, positionals } = parse(argv, decision === 'approve' ? { reason: { type: 'string' }, 'for-run': { type: 'boolean' } } : { reason: { type: 'string' } }, 1, usage);
  const id = positionals[0];
  if (!id) throw new UsageError(`${decision} needs an approval ID (see flightlog pending; usage: ${usage})`);
  const user = io.env.USER && /^[\w.@-]{1,64}$/.test(io.env.USER) ? io.env.USER : 'cli';
  const body: { decision: string; by: string; reason?: string; scope?: 'run' } = { decision, by: user };
  if (typeof flags.reason === 'string') body.reason = flags.reason;
  if (flags['for-run'] === true) body.scope = 'run';
  const r = await request<ApprovalDecisionResult>(resolveDataDir(flags['data-dir'] as string | undefined, io.env), 'POST', `/api/approvals/${encodeURIComponent(id)}`, body);
  io.stderr.write(`${r.decision === 'approve' ? 'approved' : 'denied'} ${r.id} as ${r.by}${r.scope === 'run' ? ' (and its rule, for the rest of the run)' : ''}\n`);
  return 0;
}
