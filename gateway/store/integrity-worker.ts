/**
 * Runs session checks for the app's badge on a thread of its own with a read-only connection:
 * checking a big session hashes every event and row, which must not stall the event loop that
 * relays traffic. Loaded as a worker_threads entry point by IntegrityCache.
 */
import Database from 'better-sqlite3';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { checkSession, type SessionIntegrity, type VerifyingKey } from './integrity';

export interface IntegrityRequest {
  type: 'check';
  id: number;
  sessionId: string;
}

export interface IntegrityReply {
  id: number;
  result?: SessionIntegrity;
  error?: string;
}

interface IntegrityInit {
  flightlogIntegrity: true;
  file: string;
  key: VerifyingKey;
}

function serve(init: IntegrityInit): void {
  const port = parentPort;
  if (!port) return;
  let db: Database.Database | null = null;
  port.on('message', (m: IntegrityRequest | { type: 'close' }) => {
    if (m.type === 'close') {
      db?.close();
      port.close();
      return;
    }
    try {
      db ??= new Database(init.file, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      port.postMessage({ id: m.id, result: checkSession(db, m.sessionId, init.key) } satisfies IntegrityReply);
    } catch (err) {
      port.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies IntegrityReply);
    }
  });
}

if (!isMainThread && (workerData as Partial<IntegrityInit> | null)?.flightlogIntegrity === true) serve(workerData as IntegrityInit);
