import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { exportBundle } from '../../gateway/bundle/export';
import { defaultPageDir, exportHtmlReport, splitMemberText } from '../../gateway/bundle/html-report';
import { runExportCommand } from '../../gateway/cli/bundle-commands';
import type { Io } from '../../gateway/cli/main';
import { ensureRenderer } from '../helpers/browser';
import { PLANTED_SECRET, cleanupStores, newStore, readMembers, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';

/** Recorded content that would end or confuse an HTML script block if embedded naively. */
const HOSTILE = `</script><img src=x onerror="document.title='pwned'"><!--<script>alert(1)</script> </SCRIPT > <!-- -->`;

let store: Store;
let samples: Samples;
let hostile: string;
let work: string;
let report: string;
let html: string;
let result: Awaited<ReturnType<typeof exportHtmlReport>>;

/** dist/renderer/html-report.js, built when a plain tsc build left it out. */
function ensurePage(): void {
  if (fs.existsSync(path.join(defaultPageDir(), 'html-report.js'))) return;
  process.env.FLIGHTLOG_REBUILD_RENDERER = '1';
  try {
    ensureRenderer();
  } finally {
    delete process.env.FLIGHTLOG_REBUILD_RENDERER;
  }
}

/** The member texts as the page reads them: every `data-member` block, joined per member in document order. */
function embedded(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/<script type="(?:application\/json|text\/plain)" data-member="([^"]+)">([\s\S]*?)<\/script>/g)) out.set(m[1], (out.get(m[1]) ?? '') + m[2]);
  return out;
}

before(async () => {
  ensurePage();
  store = newStore();
  samples = await recordSamples(store);
  const s = store.rec.openSession({ connection: 'api', protocol: 'http', identity: 'claude', runId: 'run_test1' });
  const c = s.startCommand({ kind: 'http', text: `GET /page?q=${HOSTILE}`, classification: 'read', detail: { method: 'GET', url: '/page' } });
  s.event('request', 'client→upstream', { body: HOSTILE });
  c.finish({ status: 'ok', result: { status: 200, body: HOSTILE } });
  s.close('closed', 'done');
  await store.rec.flush();
  hostile = s.id;
  work = tmpDir('flightlog-html-unit-');
  report = path.join(work, 'report.html');
  result = await exportHtmlReport(store.db, { sessionIds: [samples.pg, samples.ssh, samples.http, samples.live, hostile], out: report, key: store.key });
  html = fs.readFileSync(report, 'utf8');
});

after(() => {
  store.db.close();
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

test('the report is one self-contained file: nothing is loaded from elsewhere, a CSP forbids it anyway', () => {
  // recorded content (the members) may hold any markup as text; the page around it must load nothing
  const outsideMembers = html.replace(/<script type="(?:application\/json|text\/plain)" data-member="[^"]+">[\s\S]*?<\/script>/g, '');
  assert.doesNotMatch(outsideMembers, /<(link|iframe|img|object|embed|base)\b[^>]*>/i, 'no element of the page itself loads anything');
  assert.doesNotMatch(outsideMembers, /<script\b[^>]*\bsrc\s*=/i, 'no external script');
  assert.doesNotMatch(outsideMembers.replace(/<script>[\s\S]*<\/script>/, ''), /https?:\/\//i, 'no URL in the page markup');
  assert.doesNotMatch(outsideMembers, /@import|url\(\s*['"]?https?:/i, 'no stylesheet import or remote url()');
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html);
  assert.ok(csp, 'a CSP meta tag');
  assert.match(csp[1], /default-src 'none'/);
  assert.match(csp[1], /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/, 'only the page script, by hash');
  assert.match(csp[1], /style-src 'nonce-[A-Za-z0-9+/=]+'(;|$)/, 'only the page styles, by nonce');
  assert.doesNotMatch(csp[1], /unsafe-inline|unsafe-eval|https?:|\*/);
  // the page script is the last block (recorded text may hold a literal <script> too)
  const script = html.slice(html.lastIndexOf('\n<script>') + '\n<script>'.length, html.lastIndexOf('</script>\n</body>'));
  const hash = createHash('sha256').update(script, 'utf8').digest('base64');
  assert.ok(csp[1].includes(`'sha256-${hash}'`), 'the hash is the inline script\u2019s own');
});

test('size: the recording plus at most 1.5 MB', () => {
  assert.equal(result.bytes, fs.statSync(report).size);
  const overhead = result.bytes - result.memberBytes;
  assert.ok(overhead > 0 && overhead <= 1.5 * 1024 * 1024, `overhead ${overhead} bytes`);
  assert.equal(result.sessions, 5);
});

test('every bundle member is embedded verbatim, readable, and matches the signed manifest', async () => {
  const members = embedded(html);
  const manifest = JSON.parse(members.get('manifest.json')!) as { members: Array<{ name: string; size: number; sha256: string }> };
  for (const m of manifest.members) {
    const text = members.get(m.name);
    assert.ok(text !== undefined, `${m.name} is embedded`);
    const bytes = Buffer.from(text, 'utf8');
    assert.equal(bytes.length, m.size, m.name);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), m.sha256, m.name);
  }
  for (const name of ['manifest.json', 'manifest.sig', 'SHA256SUMS', 'public-key.pem']) assert.ok(members.has(name), name);
  // the same members a bundle of these sessions carries (only the manifest's time and signature differ)
  const bundle = path.join(work, 'same.flightlog');
  await exportBundle(store.db, { sessionIds: [samples.pg, samples.ssh, samples.http, samples.live, hostile], out: bundle, key: store.key });
  for (const m of await readMembers(bundle)) {
    if (m.name === 'manifest.json' || m.name === 'manifest.sig' || m.name === 'SHA256SUMS') continue;
    assert.equal(members.get(m.name), m.data.toString('utf8'), `${m.name} as in the bundle`);
  }
  // grep-able: a command's text and an event row appear in the file as they are in the bundle
  assert.ok(html.includes('SELECT email FROM users WHERE id = 1'));
  const firstEvent = members.get(`sessions/${samples.pg}/events.ndjson`)!.split('\n')[0];
  assert.ok(html.includes(firstEvent), 'an event line appears unchanged');
});

test('recorded </script and <!-- cannot end a block: the member is split right after the "<", and only there', () => {
  const members = embedded(html);
  const events = members.get(`sessions/${hostile}/events.ndjson`)!;
  assert.ok(events.includes('</script><img src=x'), 'the joined text holds the recorded markup unchanged');
  const blocks = [...html.matchAll(new RegExp(`data-member="sessions/${hostile}/events\\.ndjson">([\\s\\S]*?)</script>`, 'g'))].map((m) => m[1]);
  assert.ok(blocks.length > 1, 'split into several blocks');
  for (const b of blocks) assert.doesNotMatch(b, /<\/script|<!--/i, 'no block holds a sequence that ends or escapes it');
  for (const b of blocks.slice(0, -1)) assert.ok(b.endsWith('<'), 'cut right after the "<"');
  const tricky = 'a</script>b</SCRIPT c<!--d<!-- <\\/script <';
  const parts = splitMemberText(tricky);
  assert.equal(parts.join(''), tricky);
  assert.equal(parts.length, 5);
  assert.deepEqual(splitMemberText('plain'), ['plain']);
});

test('a planted secret never appears raw in the report', () => {
  assert.ok(!html.includes(PLANTED_SECRET), 'the raw secret is not in the file');
  assert.match(html, /\[MASKED:/, 'it is there masked');
  assert.ok(!html.includes('inline-header-secret-1234'), 'inline connection secrets are redacted as in the bundle');
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const io: Io = { stdout, stderr, stdin: new PassThrough(), env: {} };
  const code = await runExportCommand(argv, io);
  return { code, stdout: out, stderr: err };
}

test('flightlog export --format html (and -o FILE.html) writes the report; bad input is one line', async () => {
  const a = path.join(work, 'cli.html');
  let r = await cli([samples.pg, '--run', 'run_test1', '-o', a, '--format', 'html', '--data-dir', store.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^exported \d+ sessions, \d+ events to .*cli\.html \(HTML report, .*\), signed by SHA256:\S+\n$/);
  assert.match(fs.readFileSync(a, 'utf8'), /^<!doctype html>/);
  const b = path.join(work, 'by-extension.html');
  r = await cli([samples.ssh, '-o', b, '--data-dir', store.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /HTML report/);
  r = await cli([samples.ssh, '-o', b, '--data-dir', store.dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already exists \(pass --force/);
  r = await cli([samples.ssh, '-o', b, '--format', 'htm', '--data-dir', store.dir]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--format must be one of bundle, asciicast, har, jsonl, html/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.partial-')), [], 'no partial file left');
});

test('a recording too large for one page is refused in one line, leaving no file behind', async () => {
  const out = path.join(work, 'too-large.html');
  await assert.rejects(exportHtmlReport(store.db, { sessionIds: [samples.pg], out, key: store.key, maxRecordingBytes: 1000 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_EXPORT_TOO_LARGE');
    assert.match(err.message, /^the recording is .*, over the .* one HTML page can hold; export a bundle/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.startsWith('too-large')), []);
});
