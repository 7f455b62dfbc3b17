/**
 * Fuzzes the flightlog.yaml loader: whatever a user (or a settings form) writes, loading gives a
 * config or one ConfigError line that names the file, the line and the path — never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../gateway/config/load';
import { ConfigError, FlightlogError } from '../../gateway/core/errors';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { tempDir } from '../helpers/tmp';
import { budget } from './budget';

const work = tempDir('flightlog-fuzz-config-');
const sample = fs.readFileSync(path.join(PACKAGE_ROOT, 'resources', 'sample-config', 'flightlog.yaml'), 'utf8');
let n = 0;

function load(text: string): void {
  const file = path.join(work, `c${n++}.yaml`);
  fs.writeFileSync(file, text);
  try {
    loadConfig(file);
  } catch (err) {
    if (!(err instanceof FlightlogError)) throw new Error(`loadConfig threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}\n--- yaml ---\n${text}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.ok(err.message.startsWith(file), `names the file: ${err.message}`);
    if (err instanceof ConfigError && err.docPath !== '') assert.equal(typeof err.line, 'number', `a wrong value is located by line: ${err.message}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

test('random text as flightlog.yaml: a config or a located one-line error', () => {
  const yamlish = fc.array(
    fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('connections:', '  - name: a', '    protocol: postgres', '  listen: 127.0.0.1:0', '- ', ': ', '{', '}', '[', ']', '&a', '*a', '!!binary', '---', '...', '? ', '|', '>', '"', "'", '#', '\t', '  ', '<<: *a', '%YAML 1.2'),
    ),
    { maxLength: 12 },
  );
  const text = fc.tuple(yamlish, fc.constantFrom('\n', ' ', '')).map(([parts, sep]) => parts.join(sep));
  fc.assert(fc.property(text, (t) => load(t)), budget(120));
});

/** Paths into a JS value, to replace or delete what sits there. */
function paths(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function setIn(root: unknown, p: Array<string | number>, value: unknown, remove: boolean): unknown {
  if (p.length === 0) return value;
  const parent = p.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root) as Record<string | number, unknown>;
  const last = p[p.length - 1];
  if (remove) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
  return root;
}

test('the sample config with random values swapped in, or keys removed: a config or a located error', () => {
  const base = parse(sample) as unknown;
  const all = paths(base);
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom('', ' ', 'postgres', 'http', 'kubernetes', 'ftp', '127.0.0.1:99999', 'localhost:0', '::1', { env: '' }, { file: '' }, { env: 'HOME', file: '/x' }, -1, 65536, 1.5, null, [], {}),
  );
  const mutation = fc.record({ at: fc.nat(all.length - 1), value, remove: fc.boolean(), extraKey: fc.option(fc.string({ minLength: 1, maxLength: 12 })) });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
      let doc = structuredClone(base);
      for (const m of muts) {
        const live = paths(doc);
        const p = live[m.at % live.length];
        doc = setIn(doc, p, structuredClone(m.value), m.remove && p.length > 0);
        if (m.extraKey && doc && typeof doc === 'object' && !Array.isArray(doc)) (doc as Record<string, unknown>)[m.extraKey] = structuredClone(m.value);
      }
      load(stringify(doc));
    }),
    budget(80),
  );
});

test('round trip: a valid config written back as YAML loads to the same config', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
  fc.assert(
    fc.property(name, fc.integer({ min: 1, max: 65535 }), fc.array(name, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 10000 }), (conn, port, ids, headRows) => {
      const doc = parse(sample) as { connections: Array<Record<string, unknown>>; recording: Record<string, unknown> };
      doc.connections[0].name = conn;
      doc.connections[0].listen = `127.0.0.1:${port}`;
      doc.connections[0].identities = ids;
      doc.recording.headRows = headRows;
      const a = path.join(work, `rt${n++}.yaml`);
      const b = path.join(work, `rt${n++}.yaml`);
      fs.writeFileSync(a, stringify(doc));
      try {
        const first = loadConfig(a);
        fs.writeFileSync(b, stringify(parse(fs.readFileSync(a, 'utf8'))));
        const second = loadConfig(b);
        assert.deepStrictEqual({ ...second, file: a }, { ...first, file: a });
        assert.equal(first.connections[0].name, conn);
      } finally {
        fs.rmSync(a, { force: true });
        fs.rmSync(b, { force: true });
      }
    }),
    budget(25),
  );
});

test('found by fuzzing: a key or value with a newline (a complex YAML key) still gives a one-line error', () => {
  const file = path.join(work, 'complex-key.yaml');
  fs.writeFileSync(file, '?  connections: #');
  assert.throws(() => loadConfig(file), (err: unknown) => err instanceof ConfigError && !err.message.includes('\n') && /unknown key/.test(err.message));
  fs.writeFileSync(file, 'connections:\n  - name: a\n    protocol: "post\\ngres"\n');
  assert.throws(() => loadConfig(file), (err: unknown) => err instanceof ConfigError && !err.message.includes('\n') && /post\\ngres/.test(err.message));
});

test('found by fuzzing: an alias to no anchor (`<<: *a`) is a one-line YAML error, not an internal error', () => {
  const file = path.join(work, 'alias.yaml');
  fs.writeFileSync(file, 'connections: []\n<<: *a\n');
  assert.throws(() => loadConfig(file), (err: unknown) => err instanceof ConfigError && /^.*alias\.yaml: \(document\): not valid YAML: .*alias/i.test(err.message));
});
