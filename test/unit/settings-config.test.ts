/** Settings write-back to flightlog.yaml: comments kept, secrets only as references, atomic, untouched on a failed reload. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, validateConfig } from '../../gateway/config/load';
import { ConfigError, FlightlogError } from '../../gateway/core/errors';
import type { FlightlogConfig } from '../../gateway/common/config-schema';
import { applyConfigEdit, removeConnection, settingsFile, stageFile, toConnectionInput, upsertConnection } from '../../gateway/settings/config-file';
import { tempDir } from '../helpers/tmp';

const ORIGINAL = `# Our team's gateway config. Keep this comment.
connections:
  # the app database (staging)
  - name: app-db
    protocol: postgres
    listen: 127.0.0.1:6432
    upstream: { host: 127.0.0.1, port: 5432, user: app, database: app,
                password: { env: APP_DB_PASSWORD } } # trailing note
    identities: [claude]

recording:
  headRows: 50 # fewer rows, smaller store
`;

const MODEL = {
  name: 'model',
  protocol: 'http',
  listen: '127.0.0.1:8788',
  upstream: { url: 'https://api.example.com', headers: { 'x-api-key': { env: 'MODEL_KEY' } } },
  identities: ['claude'],
  mask: 'record',
};

function setup(): { dir: string; file: string; running: FlightlogConfig } {
  const dir = tempDir('flightlog-settings-');
  const file = path.join(dir, 'flightlog.yaml');
  fs.writeFileSync(file, ORIGINAL, { mode: 0o644 });
  return { dir, file, running: loadConfig(file) };
}

const noReload = async () => undefined;

describe('settings write-back', () => {
  it('adds a connection keeping comments, order and the rest of the file', async () => {
    const { dir, file, running } = setup();
    let reloaded: FlightlogConfig | null = null;
    const config = await applyConfigEdit({ file, running, edit: (doc) => upsertConnection(doc, MODEL), reload: async (c) => void (reloaded = c) });
    const text = fs.readFileSync(file, 'utf8');
    for (const kept of ["# Our team's gateway config. Keep this comment.", '# the app database (staging)', '# trailing note', '# fewer rows, smaller store']) {
      assert.ok(text.includes(kept), `kept: ${kept}\n${text}`);
    }
    assert.ok(text.indexOf('name: app-db') < text.indexOf('name: model'), 'new connection appended after the existing one');
    assert.match(text, /x-api-key: \{ env: MODEL_KEY \}/, 'secret reference in flow style');
    assert.match(text, /identities: \[ claude \]/);
    const loaded = loadConfig(file);
    assert.deepEqual(loaded.connections.map((c) => c.name), ['app-db', 'model']);
    assert.equal(loaded.recording.headRows, 50);
    assert.deepEqual(reloaded, config, 'the gateway got the config that was written');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir), ['flightlog.yaml'], 'no temp file left behind');
  });

  it('replaces a connection in place (keeping the comment above it) and deletes one', async () => {
    const { file, running } = setup();
    const changed = { ...toConnectionInput(running.connections[0]), listen: '127.0.0.1:6433' };
    const after = await applyConfigEdit({ file, running, edit: (doc) => upsertConnection(doc, changed), reload: noReload });
    assert.equal(after.connections.length, 1);
    assert.equal(after.connections[0].listen.port, 6433);
    assert.match(fs.readFileSync(file, 'utf8'), /# the app database \(staging\)\n\s*- name: app-db/);
    const renamed = await applyConfigEdit({ file, running: after, edit: (doc) => upsertConnection(doc, { ...changed, name: 'main-db' }, 'app-db'), reload: noReload });
    assert.deepEqual(renamed.connections.map((c) => c.name), ['main-db']);
    const empty = await applyConfigEdit({ file, running: renamed, edit: (doc) => removeConnection(doc, 'main-db'), reload: noReload });
    assert.equal(empty.connections.length, 0);
    assert.ok(fs.readFileSync(file, 'utf8').includes("# Our team's gateway config."));
  });

  it('refuses an inline secret with the loader’s own message and writes nothing', async () => {
    const { dir, file, running } = setup();
    const bad = { ...MODEL, upstream: { url: 'https://api.example.com', headers: { 'x-api-key': 'sk-live-hunter2' } } };
    await assert.rejects(
      applyConfigEdit({ file, running, edit: (doc) => upsertConnection(doc, bad), reload: () => assert.fail('no reload for a refused config') }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.docPath, 'connections[1].upstream.headers.x-api-key');
        assert.match(err.message, /^.*flightlog\.yaml:\d+: connections\[1\]\.upstream\.headers\.x-api-key: secrets are referenced, never written here/);
        assert.ok(!err.message.includes('hunter2'), 'the refused value is not echoed');
        return true;
      },
    );
    // the same text as the loader gives for the same YAML
    const yamlFile = path.join(dir, 'inline.yaml');
    fs.writeFileSync(yamlFile, `connections:\n  - name: m\n    protocol: postgres\n    listen: 127.0.0.1:1\n    upstream: { host: h, user: u, password: hunter2 }\n    identities: [a]\n`);
    const viaLoader = (() => {
      try {
        loadConfig(yamlFile);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    const viaSettings = await applyConfigEdit({
      file: yamlFile,
      running: validateConfig({}, yamlFile),
      edit: () => undefined,
      reload: noReload,
    }).then(
      () => '',
      (e: Error) => e.message,
    );
    assert.equal(viaSettings, viaLoader);
    assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['flightlog.yaml', 'inline.yaml']);
  });

  it('leaves the file byte for byte as it was when the reload fails', async () => {
    const { dir, file, running } = setup();
    const before = fs.readFileSync(file);
    const mode = fs.statSync(file).mode;
    await assert.rejects(
      applyConfigEdit({
        file,
        running,
        edit: (doc) => upsertConnection(doc, MODEL),
        reload: async () => {
          throw new FlightlogError('E_SECRET', 'connection "model": upstream.header reads environment variable MODEL_KEY, which is not set');
        },
      }),
      /MODEL_KEY, which is not set/,
    );
    assert.deepEqual(fs.readFileSync(file), before);
    assert.equal(fs.statSync(file).mode, mode);
    assert.deepEqual(fs.readdirSync(dir), ['flightlog.yaml']);
  });

  it('stages writes beside the target: the target changes only on commit, atomically by rename', () => {
    const { dir, file } = setup();
    const inode = fs.statSync(file).ino;
    const staged = stageFile(file, 'connections: []\n');
    assert.equal(fs.readFileSync(file, 'utf8'), ORIGINAL, 'not in place before commit');
    const tmp = fs.readdirSync(dir).find((f) => f.endsWith('.tmp'));
    assert.ok(tmp, 'a temp file in the same directory (same file system: rename is atomic)');
    assert.equal(fs.statSync(path.join(dir, tmp)).mode & 0o777, 0o600);
    staged.commit();
    assert.equal(fs.readFileSync(file, 'utf8'), 'connections: []\n');
    assert.notEqual(fs.statSync(file).ino, inode, 'replaced by rename, not rewritten in place');
    const aborted = stageFile(file, 'garbage: [\n');
    aborted.abort();
    assert.equal(fs.readFileSync(file, 'utf8'), 'connections: []\n');
    assert.deepEqual(fs.readdirSync(dir), ['flightlog.yaml']);
  });

  it('writes <dataDir>/flightlog.yaml when the gateway started without a config, seeded with what runs', async () => {
    const dataDir = tempDir('flightlog-settings-data-');
    const running = validateConfig({ connections: [{ ...MODEL, name: 'in-memory', listen: '127.0.0.1:0' }] }, '(no config)');
    const file = settingsFile(running, dataDir);
    assert.equal(file, path.join(dataDir, 'flightlog.yaml'));
    await applyConfigEdit({ file, running, edit: (doc) => upsertConnection(doc, MODEL), reload: noReload });
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^# flightlog\.yaml, written by Flightlog Settings/);
    assert.deepEqual(loadConfig(file).connections.map((c) => c.name), ['in-memory', 'model']);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });
});
