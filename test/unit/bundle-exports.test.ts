import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportAsciicast } from '../../gateway/bundle/asciicast';
import { exportHar } from '../../gateway/bundle/har';
import { exportJsonl } from '../../gateway/bundle/jsonl';
import { listEvents } from '../../gateway/store/queries';
import { PLANTED_SECRET, cleanupStores, newStore, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';
import { validateHar } from '../helpers/bundle-har-validator';

let store: Store;
let samples: Samples;
let work: string;

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
});

after(() => {
  store.db.close();
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

/** asciicast v2 as the spec has it: a header object, then [time, code, data] with time never decreasing. */
function validateAsciicast(text: string): { header: Record<string, unknown>; events: Array<[number, string, string]> } {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  const header = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(header.version, 2);
  assert.ok(Number.isInteger(header.width) && (header.width as number) > 0);
  assert.ok(Number.isInteger(header.height) && (header.height as number) > 0);
  assert.ok(Number.isInteger(header.timestamp));
  const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
  let last = 0;
  for (const e of events) {
    assert.equal(e.length, 3);
    assert.equal(typeof e[0], 'number');
    assert.ok(e[0] >= last, 'time never goes back');
    last = e[0];
    assert.ok(['o', 'i', 'r', 'm'].includes(e[1]));
    assert.equal(typeof e[2], 'string');
    if (e[1] === 'r') assert.match(e[2], /^\d+x\d+$/);
  }
  return { header, events };
}

test('asciicast: header from the pty request, output, input and resizes in order; asciinema reads it', async () => {
  const out = path.join(work, 'ssh.cast');
  const r = await exportAsciicast(store.db, samples.ssh, out);
  const text = fs.readFileSync(out, 'utf8');
  const { header, events } = validateAsciicast(text);
  assert.equal(header.width, 100);
  assert.equal(header.height, 30);
  assert.deepEqual(header.env, { TERM: 'xterm-256color', SHELL: '/bin/sh' });
  assert.equal(r.events, events.length);
  assert.deepEqual(events.map((e) => e[1]), ['o', 'i', 'o', 'r', 'o', 'o']);
  assert.equal(events[3][2], '120x40');
  assert.ok(!text.includes(PLANTED_SECRET));
  assert.match(text, /\[MASKED:upstream-password:[0-9a-f]{10}\]/);
  // The real asciinema CLI (Debian's) parses and renders the recording; it wants a terminal, so run it under script(1).
  const cat = execFileSync('script', ['-qec', `asciinema cat '${out}'`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).toString();
  assert.match(cat, /total 0/);
  assert.match(cat, /deploy@web-1:~\$ exit/);
});

test('asciicast refuses a session without terminal output, and never leaves a partial file', async () => {
  const out = path.join(work, 'pg.cast');
  await assert.rejects(exportAsciicast(store.db, samples.pg, out), /has no terminal output to export as asciicast/);
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('partial')), []);
});

test('asciicast of an exec session (no pty) turns bare newlines into CR LF and uses the default size', async () => {
  const s = store.rec.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude' });
  const c = s.startCommand({ kind: 'exec', text: 'uname -a' });
  s.event('exec', 'client→upstream', { command: 'uname -a' });
  s.event('o', 'upstream→client', 'Linux web-1\nsecond line\n');
  s.event('e', 'upstream→client', 'warning\n');
  c.finish({ status: 'ok', result: { exitCode: 0 } });
  s.close();
  await store.rec.flush();
  const out = path.join(work, 'exec.cast');
  await exportAsciicast(store.db, s.id, out);
  const { header, events } = validateAsciicast(fs.readFileSync(out, 'utf8'));
  assert.equal(header.width, 80);
  assert.deepEqual(events.map((e) => e[2]), ['Linux web-1\r\nsecond line\r\n', 'warning\r\n']);
});

test('HAR: every HTTP exchange is an entry that satisfies the HAR 1.2 required fields', async () => {
  const out = path.join(work, 'api.har');
  const r = await exportHar(store.db, samples.http, out);
  const har = JSON.parse(fs.readFileSync(out, 'utf8')) as { log: { entries: Array<Record<string, any>> } };
  assert.deepEqual(validateHar(har), []);
  assert.equal(r.entries, 4);
  const [post, big, blocked, llm] = har.log.entries;
  assert.equal(post.request.method, 'POST');
  assert.equal(post.request.url, 'https://api.example.com/v1/echo?x=1', 'the upstream base from the connection config');
  assert.deepEqual(post.request.queryString, [{ name: 'x', value: '1' }]);
  assert.deepEqual(post.request.headers.filter((h: { name: string }) => h.name === 'accept').map((h: { value: string }) => h.value), ['a/b', 'c/d']);
  assert.equal(post.request.postData.text, '{"hello":"world"}');
  assert.equal(post.response.status, 200);
  assert.equal(post.response.statusText, 'OK');
  assert.equal(post.timings.wait, 12.5);
  assert.equal(post.time, 20.25);
  assert.match(post.response.content.text, /\[MASKED:upstream-password:/);
  assert.equal(big.response.redirectURL, '/elsewhere');
  assert.equal(big.response.content.encoding, 'base64');
  assert.match(big.response.content.comment, /recorded head only: 100000 bytes/);
  assert.equal(blocked.response.status, 0);
  assert.match(blocked.comment, /blocked by policy/);
  assert.equal(llm._flightlog.command > 0, true);
  assert.ok(!fs.readFileSync(out).includes(Buffer.from(PLANTED_SECRET)));
  await assert.rejects(exportHar(store.db, samples.ssh, path.join(work, 'ssh.har')), /no HTTP exchanges in session/);
});

test('the HAR validator itself catches missing and mistyped fields', () => {
  assert.ok(validateHar({ log: { version: '1.2', creator: { name: 'x' }, entries: [{ startedDateTime: 'yesterday', time: -1, request: {}, response: { status: 'ok' }, cache: {}, timings: { send: 0, wait: 0 }, extra: 1 }] } }).length >= 10);
});

test('JSON Lines: one event per line with its session, connection, identity and command', async () => {
  const out = path.join(work, 'all.jsonl');
  const r = await exportJsonl(store.db, [samples.pg, samples.ssh], out);
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  const expected = listEvents(store.db, samples.pg).events.length + listEvents(store.db, samples.ssh).events.length;
  assert.equal(lines.length, expected);
  assert.equal(r.events, expected);
  const q = lines.find((l) => l.kind === 'query')!;
  assert.equal(q.session, samples.pg);
  assert.equal(q.connection, 'app-db');
  assert.equal(q.protocol, 'postgres');
  assert.equal(q.identity, 'claude');
  assert.equal(q.run, 'run_test1');
  assert.equal(q.command.kind, 'sql');
  assert.equal(q.command.text, 'SELECT email FROM users WHERE id = 1');
  assert.deepEqual(q.data, { sql: 'SELECT email FROM users WHERE id = 1' });
  assert.ok(lines.every((l) => typeof l.time === 'string' && /^[0-9a-f]{64}$/.test(l.hash)));
  assert.ok(!fs.readFileSync(out).includes(Buffer.from(PLANTED_SECRET)));
});
