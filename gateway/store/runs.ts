import type { Db } from './db';
import { FlightlogError } from '../core/errors';
import { newId } from '../core/ids';
import { addRunToken, revokeRunTokens } from './identities';

/** Starts a run: a row for the agent process and a token of its own that tags its sessions. */
export function createRun(db: Db, opts: { identity: string; argv: string[]; pid?: number }): { runId: string; token: string } {
  if (!Array.isArray(opts.argv) || opts.argv.length === 0 || !opts.argv.every((a) => typeof a === 'string')) {
    throw new FlightlogError('E_PARAM', 'argv must be a non-empty list of strings');
  }
  const runId = newId('run');
  let token = '';
  db.transaction(() => {
    token = addRunToken(db, opts.identity, runId);
    db.prepare('INSERT INTO runs (id, identity, argv, started_at, pid) VALUES (?, ?, ?, ?, ?)').run(runId, opts.identity, JSON.stringify(opts.argv), new Date().toISOString(), opts.pid ?? null);
  }).immediate();
  return { runId, token };
}

/** Ends a run with the agent's exit code and revokes its token. */
export function endRun(db: Db, runId: string, exitCode: number | null): void {
  const r = db.prepare('UPDATE runs SET ended_at = ?, exit_code = ? WHERE id = ? AND ended_at IS NULL').run(new Date().toISOString(), exitCode, runId);
  if (r.changes === 0) throw new FlightlogError('E_NOT_FOUND', `no running run "${runId}"`);
  revokeRunTokens(db, runId);
}
