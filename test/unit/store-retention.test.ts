import { captureCli, type CliResult } from '../helpers/cli';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, retentionMs, retentionPolicy, validateConfig } from '../../gateway/config/load';
import { toConnectionInput } from '../../gateway/settings/config-file';
import { search } from '../../gateway/store/queries';
import type { GcResult } from '../../gateway/store/retention';
import type { StoreIntegrity } from '../../gateway/store/integrity';
import { cleanupStores, newStore, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';

let store: Store;
let samples: Samples;
let work: string;
let config: string;

const DAY = 86_400_000;

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
  config = path.join(work, 'flightlog.yaml');
  fs.writeFileSync(
    config,
    [
      'retention: 8w',
      'connections:',
      '  - { name: app-db, protocol: postgres, listen: 127.0.0.1:0, upstream: { host: 127.0.0.1, port: 5432, user: app }, identities: [claude], retention: 30d }',
      '  - { name: web-1, protocol: ssh, listen: 127.0.0.1:0, upstream: { host: 127.0.0.1, port: 22, user: deploy, password: { env: SSH_PW } }, identities: [claude] }',
      '',
    ].join('\n'),
  );
  // the pg session ended 40 days ago (past its 30d), the ssh one 10 days ago, the http one 60 days
  // ago (its connection is not configured any more: the 8w default applies); the live one never ends
  const ended = (id: string, daysAgo: number) => store.db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ?').run(new Date(Date.now() - daysAgo * DAY).toISOString(), id);
  ended(samples.pg, 40);
  ended(samples.ssh, 10);
  ended(samples.http, 60);
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

const cli = (argv: string[]): Promise<CliResult> => captureCli([...argv, '--data-dir', store.dir]);

test('retention is a period in hours, days or weeks, per connection with a global default; anything else is a config error naming the line', () => {
  assert.equal(retentionMs('36h'), 36 * 3_600_000);
  assert.equal(retentionMs('30d'), 30 * DAY);
  assert.equal(retentionMs('2w'), 14 * DAY);
  for (const bad of ['30', '0d', '30 days', '1y', '-1d']) assert.equal(retentionMs(bad), null, bad);
  const c = loadConfig(config);
  assert.equal(c.retention, '8w');
  assert.equal(c.connections[0].retention, '30d');
  const policy = retentionPolicy(c);
  assert.deepEqual(policy('app-db'), { spec: '30d', ms: 30 * DAY });
  assert.deepEqual(policy('web-1'), { spec: '8w', ms: 56 * DAY });
  assert.deepEqual(policy('gone'), { spec: '8w', ms: 56 * DAY });
  assert.equal(retentionPolicy(validateConfig({}, 'x.yaml'))('app-db'), null, 'no retention: sessions are kept');
  assert.equal(toConnectionInput(c.connections[0]).retention, '30d', 'Settings writes it back');
  const badFile = path.join(work, 'bad.yaml');
  fs.writeFileSync(badFile, 'connections:\n  - name: a\n    protocol: ssh\n    listen: 127.0.0.1:0\n    upstream: { host: h, port: 22, user: u, password: { env: X } }\n    identities: [x]\n    retention: 30 days\n');
  assert.throws(() => loadConfig(badFile), /bad\.yaml:7: connections\[0\]\.retention: expected a period like 30d \(a whole number of h, d or w\)/);
});

test('gc --dry-run lists what is past retention and changes nothing; gc removes it all and keeps signed tombstones', async () => {
  const dry = await cli(['gc', '--dry-run', '--json', '--config', config]);
  assert.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout) as GcResult;
  assert.equal(planned.dryRun, true);
  assert.deepEqual(planned.removed.map((s) => [s.sessionId, s.retention]).sort(), [
    [samples.pg, '30d'],
    [samples.http, '8w'],
  ].sort());
  assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n, 4, 'a dry run removes nothing');

  const r = await cli(['gc', '--config', config]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^removed  ${samples.pg}  app-db  ended .* \\(retention 30d\\)$`, 'm'));
  assert.match(r.stdout, /^removed 2 sessions \(\d+ events\) past retention; a signed tombstone of each is kept$/m);
  for (const table of ['events', 'commands', 'findings']) {
    const n = store.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE session_id IN (?, ?)`).get(samples.pg, samples.http) as { n: number };
    assert.equal(n.n, 0, `${table} of removed sessions are gone`);
  }
  assert.deepEqual(search(store.db, 'email'), [], 'the removed commands are out of the search index too');
  store.db.prepare("INSERT INTO commands_fts(commands_fts) VALUES ('integrity-check')").run();
  assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM command_targets WHERE target = ?').get('public.users') as { n: number }).n, 0);

  const sessions = await cli(['sessions']);
  assert.match(sessions.stdout, new RegExp(`^${samples.pg}  app-db  postgres  .* removed by retention on \\d{4}-\\d\\d-\\d\\d$`, 'm'));
  assert.match(sessions.stdout, new RegExp(`^${samples.ssh} `, 'm'), 'the ssh session is within retention');

  const v = await cli(['verify']);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, new RegExp(`^${samples.http}  api  removed by retention on .* \\(\\d+ events, tombstone signature verified\\)$`, 'm'));
  assert.match(v.stdout, /^verified: 2 sessions \(1 sealed, 1 live, 2 removed by retention\)/m);

  const again = await cli(['gc', '--config', config]);
  assert.match(again.stdout, /^removed 0 sessions/m, 'gc is idempotent');

  store.db.prepare('UPDATE tombstones SET event_count = 1 WHERE session_id = ?').run(samples.pg);
  const forged = await cli(['verify', '--json']);
  assert.equal(forged.code, 1);
  const report = JSON.parse(forged.stdout) as StoreIntegrity;
  assert.equal(report.problem?.table, 'tombstones');
  assert.match(report.message, new RegExp(`^not verified: session ${samples.pg}: its tombstone \\(tombstones\\): its signature does not verify`));
});

test('gc with no retention configured removes nothing and says so', async () => {
  const empty = path.join(work, 'empty.yaml');
  fs.writeFileSync(empty, 'connections: []\n');
  const r = await cli(['gc', '--config', empty]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^no retention configured .*; nothing removed$/m);
  const u = await cli(['gc', 'extra']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /^flightlog: unexpected argument "extra" \(usage: flightlog gc/);
});
