/** Registered secrets (`flightlog secret add`): digests per encoded form, never the value. */
import type { Db } from './db';

/** Each registered form's digest JSON text, in name and form order. */
export function registeredSecretDigests(db: Db): string[] {
  const rows = db.prepare('SELECT digest FROM registered_secrets ORDER BY name, form').all() as { digest: string }[];
  return rows.map((r) => r.digest);
}

/** Replaces a secret's forms in one immediate transaction, so a reader never sees it half registered. */
export function replaceRegisteredSecret(db: Db, name: string, forms: ReadonlyArray<{ form: string; digest: string }>, createdAt: string): void {
  db.transaction(() => {
    db.prepare('DELETE FROM registered_secrets WHERE name = ?').run(name);
    const insert = db.prepare('INSERT INTO registered_secrets (name, form, digest, created_at) VALUES (?, ?, ?, ?)');
    for (const f of forms) insert.run(name, f.form, f.digest, createdAt);
  }).immediate();
}

export function listRegisteredSecrets(db: Db): Array<{ name: string; forms: number; createdAt: string }> {
  return db.prepare('SELECT name, COUNT(*) AS forms, MIN(created_at) AS createdAt FROM registered_secrets GROUP BY name ORDER BY name').all() as Array<{ name: string; forms: number; createdAt: string }>;
}
