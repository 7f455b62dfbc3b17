import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlightlogError } from '../core/errors';
import { replayJournal } from './journal';

export type Db = Database.Database;

/**
 * Schema migrations, versioned in code and applied in order at open. Never edit a shipped
 * migration: add the next one. `PRAGMA user_version` holds the number applied.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE identities (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('agent','human')),
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
      CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
      CREATE TABLE connections (
        name TEXT PRIMARY KEY,
        protocol TEXT NOT NULL,
        config TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        identity TEXT,
        argv TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        exit_code INTEGER,
        pid INTEGER
      );
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        identity TEXT,
        connection TEXT NOT NULL,
        protocol TEXT NOT NULL,
        run_id TEXT,
        client_addr TEXT,
        meta TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        end_reason TEXT,
        event_count INTEGER NOT NULL DEFAULT 0,
        command_count INTEGER NOT NULL DEFAULT 0,
        finding_count INTEGER NOT NULL DEFAULT 0,
        last_hash TEXT,
        seal TEXT,
        seal_key TEXT
      );
      CREATE INDEX sessions_started ON sessions(started_us DESC);
      CREATE INDEX sessions_run ON sessions(run_id);
      CREATE TABLE events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_us INTEGER NOT NULL,
        wall TEXT NOT NULL,
        kind TEXT NOT NULL,
        direction TEXT NOT NULL,
        command_id INTEGER,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
      ) WITHOUT ROWID;
      CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        classification TEXT,
        targets TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        ended_us INTEGER,
        start_seq INTEGER,
        end_seq INTEGER,
        detail TEXT,
        result TEXT,
        error TEXT,
        caused_by INTEGER
      );
      CREATE INDEX commands_session ON commands(session_id, idx);
      CREATE INDEX commands_caused_by ON commands(caused_by);
      CREATE VIRTUAL TABLE commands_fts USING fts5(text, content='commands', content_rowid='id');
      CREATE TRIGGER commands_ai AFTER INSERT ON commands BEGIN
        INSERT INTO commands_fts(rowid, text) VALUES (new.id, new.text);
      END;
      CREATE TRIGGER commands_au AFTER UPDATE OF text ON commands BEGIN
        INSERT INTO commands_fts(commands_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO commands_fts(rowid, text) VALUES (new.id, new.text);
      END;
      CREATE TABLE command_targets (
        command_id INTEGER NOT NULL,
        target TEXT NOT NULL
      );
      CREATE INDEX command_targets_target ON command_targets(target);
      CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        session_id TEXT,
        command_id INTEGER,
        event_seq INTEGER,
        category TEXT NOT NULL,
        kind TEXT NOT NULL,
        fp TEXT,
        direction TEXT NOT NULL,
        masked_live INTEGER NOT NULL DEFAULT 0,
        detail TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX findings_session ON findings(session_id);
      CREATE INDEX findings_fp ON findings(fp);
      CREATE TABLE failed_attempts (
        id INTEGER PRIMARY KEY,
        connection TEXT NOT NULL,
        protocol TEXT NOT NULL,
        identity TEXT,
        client_addr TEXT,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE identity_keys (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id),
        algo TEXT NOT NULL,
        key_b64 TEXT NOT NULL,
        comment TEXT,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (algo, key_b64)
      );
      CREATE TABLE registered_secrets (
        name TEXT NOT NULL,
        form TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (name, form)
      );
    `,
  },
  {
    version: 3,
    sql: `
      -- A run's own token: minted by \`flightlog run\`, revoked when the agent exits; it tags sessions with the run.
      ALTER TABLE tokens ADD COLUMN run_id TEXT;
    `,
  },
  {
    version: 4,
    sql: `
      -- SCRAM-SHA-256 verifiers, as pg_authid keeps them: one salt and count per identity (the
      -- client-first message names only the user, and every token of that user must answer the
      -- same server-first), StoredKey and ServerKey per token (base64). Neither lets anyone log in.
      -- Tokens minted before this migration have none and can only use cleartext.
      ALTER TABLE identities ADD COLUMN scram_salt TEXT;
      ALTER TABLE identities ADD COLUMN scram_iterations INTEGER;
      ALTER TABLE tokens ADD COLUMN scram_stored_key TEXT;
      ALTER TABLE tokens ADD COLUMN scram_server_key TEXT;
    `,
  },
  {
    version: 5,
    sql: `
      -- What retention (flightlog gc) removed: enough to show the gap and prove who made it.
      -- signature: the gateway key's Ed25519 signature over tombstoneMessage() of the row.
      CREATE TABLE tombstones (
        session_id TEXT PRIMARY KEY,
        connection TEXT NOT NULL,
        protocol TEXT NOT NULL,
        identity TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        event_count INTEGER NOT NULL,
        last_hash TEXT,
        removed_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        signature TEXT NOT NULL,
        signature_key TEXT NOT NULL
      );
    `,
  },
  {
    version: 6,
    sql: `
      -- The search index of a session the recorder is writing is built in batches (indexSearch),
      -- not by a trigger per insert: FTS5 writes a segment per transaction, a third of each
      -- per-command commit. Commands of other sessions (closed ones, bundles opened, even of a
      -- session exported while live) are still indexed as inserted.
      DROP TRIGGER commands_ai;
      CREATE TRIGGER commands_ai AFTER INSERT ON commands
        WHEN NOT EXISTS (SELECT 1 FROM sessions WHERE id = new.session_id AND status = 'live' AND json_extract(meta, '$.bundle') IS NULL) BEGIN
        INSERT INTO commands_fts(rowid, text) VALUES (new.id, new.text);
      END;
      -- only a row already in the index has old terms to remove
      DROP TRIGGER commands_au;
      CREATE TRIGGER commands_au AFTER UPDATE OF text ON commands
        WHEN EXISTS (SELECT 1 FROM commands_fts_docsize WHERE id = old.id) BEGIN
        INSERT INTO commands_fts(commands_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO commands_fts(rowid, text) VALUES (new.id, new.text);
      END;
      -- lineage looks up commands by the cause they name: one without a cause need not touch the index
      DROP INDEX commands_caused_by;
      CREATE INDEX commands_caused_by ON commands(caused_by) WHERE caused_by IS NOT NULL;
    `,
  },
  {
    version: 7,
    sql: `
      -- the seq of the last record-journal batch loaded into this store (see store/journal.ts):
      -- moved in the same transaction as the batch's rows, so a batch is loaded exactly once
      CREATE TABLE journal_state (seq INTEGER NOT NULL);
      INSERT INTO journal_state (seq) VALUES (0);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Applies every migration newer than the file's user_version, each in its own transaction. */
export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new FlightlogError('E_STORE_VERSION', `the store was written by a newer Flightlog (schema ${current}, this one knows ${SCHEMA_VERSION})`);
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return SCHEMA_VERSION;
}

export function storePath(dataDir: string): string {
  return path.join(dataDir, 'flightlog.db');
}

/** Opens (creating if needed) the store in a data dir: WAL, NORMAL sync (durable across a process crash), migrated. */
export function openDb(dataDir: string, opts: { readonly?: boolean } = {}): Db {
  const file = storePath(dataDir);
  if (opts.readonly && !fs.existsSync(file)) {
    throw new FlightlogError('E_NO_STORE', `no Flightlog store in ${dataDir} (start the gateway once, or pass --data-dir)`);
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let db: Db;
  try {
    db = new Database(file, { readonly: false, fileMustExist: false });
  } catch (err) {
    throw new FlightlogError('E_STORE_OPEN', `cannot open the store ${file}: ${(err as Error).message}`);
  }
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    // best effort: the data dir itself is 0700
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  // batches a gateway acknowledged but had not loaded when it stopped (a crash): loaded now,
  // so every reader sees them; best effort here, the gateway's recorder reports a failure
  try {
    replayJournal(db);
  } catch {
    // left in the journal for the recorder
  }
  return db;
}
