/** `flightlog gc [--dry-run] [--json] [--config FILE]`: removes sessions past their retention, keeping signed tombstones. */
import * as fs from 'node:fs';
import { FlightlogError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { openDb, storePath } from '../store/db';
import { ensureGatewayKey } from '../store/chain';
import { collectGarbage } from '../store/retention';
import { retentionPolicy } from '../config/load';
import { findConfig, parse, type Io } from './main';

export const GC_USAGE = 'flightlog gc [--dry-run] [--json] [--config FILE] [--data-dir DIR]';

export function runGcCommand(argv: string[], io: Io): number {
  const { flags } = parse(argv, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string', short: 'c' } }, 0, GC_USAGE);
  const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
  if (!fs.existsSync(storePath(dataDir))) throw new FlightlogError('E_NO_STORE', `no Flightlog store in ${dataDir} (start the gateway once, or pass --data-dir)`);
  const config = findConfig(flags.config as string | undefined, dataDir);
  const dryRun = flags['dry-run'] === true;
  const configured = config.retention !== undefined || config.connections.some((c) => c.retention !== undefined);
  const db = openDb(dataDir);
  let result;
  try {
    result = collectGarbage(db, { retentionOf: retentionPolicy(config), key: ensureGatewayKey(dataDir), dryRun });
  } finally {
    db.close();
  }
  if (flags.json) {
    io.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  for (const s of result.removed) {
    io.stdout.write(`${dryRun ? 'would remove' : 'removed'}  ${s.sessionId}  ${s.connection}  ended ${s.endedAt.replace('T', ' ').slice(0, 19)}  ${s.events} events  (retention ${s.retention})\n`);
  }
  const n = result.removed.length;
  if (!configured) io.stdout.write(`no retention configured (set retention: 30d on a connection, or at the top of ${config.file ?? 'flightlog.yaml'}); nothing removed\n`);
  else if (dryRun) io.stdout.write(`would remove ${n} session${n === 1 ? '' : 's'} (${result.events} events) past retention; nothing changed\n`);
  else io.stdout.write(`removed ${n} session${n === 1 ? '' : 's'} (${result.events} events) past retention; a signed tombstone of each is kept\n`);
  return 0;
}
