/** Connections as the gateway last started them, and the run and token state a live gateway checks. */
import type { Db } from './db';

/** A connection's stored config JSON text, or undefined when the connection is unknown. */
export function connectionConfigText(db: Db, name: string): string | undefined {
  const row = db.prepare('SELECT config FROM connections WHERE name = ?').get(name) as { config: string } | undefined;
  return row?.config;
}

/** Stores each connection's config as started (first_seen kept from its first start). */
export function recordConnectionConfigs(db: Db, connections: Iterable<{ name: string; protocol: string }>, now: string): void {
  const upsert = db.prepare(
    'INSERT INTO connections (name, protocol, config, first_seen, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET protocol = excluded.protocol, config = excluded.config, updated_at = excluded.updated_at',
  );
  for (const c of connections) upsert.run(c.name, c.protocol, JSON.stringify(c), now, now);
}

/** A check whether a run is still going (not ended), reusing one prepared statement. */
export function runActiveCheck(db: Db): (runId: string) => boolean {
  const runActive = db.prepare('SELECT 1 FROM runs WHERE id = ? AND ended_at IS NULL');
  return (runId) => runActive.get(runId) !== undefined;
}

/** Checks for revoked identities and runs with a revoked token, reusing prepared statements. */
export function revocationChecks(db: Db): { identityRevoked: (name: string) => boolean; runTokenRevoked: (runId: string) => boolean } {
  const idStmt = db.prepare('SELECT revoked_at FROM identities WHERE name = ?');
  const runStmt = db.prepare('SELECT 1 AS r FROM tokens WHERE run_id = ? AND revoked_at IS NOT NULL LIMIT 1');
  return {
    identityRevoked: (name) => !!(idStmt.get(name) as { revoked_at: string | null } | undefined)?.revoked_at,
    runTokenRevoked: (runId) => !!runStmt.get(runId),
  };
}

/** A token's row id by its hash. */
export function tokenIdByHash(db: Db, hash: string): number {
  return (db.prepare('SELECT id FROM tokens WHERE token_hash = ?').get(hash) as { id: number }).id;
}

/** Deletes tokens by row id (not revokes: a revoked token of a run ends every live session of that run). */
export function deleteTokens(db: Db, ids: Iterable<number>): void {
  const del = db.prepare('DELETE FROM tokens WHERE id = ?');
  for (const id of ids) del.run(id);
}
