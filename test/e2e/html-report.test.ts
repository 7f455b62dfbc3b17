/**
 * The one-file HTML report, opened from disk in Chromium: it verifies its embedded bundle in the
 * page, shows the run's commands, findings and terminal replay, loads nothing from anywhere, and
 * turns red naming the first bad event when one byte of a recorded event is changed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { defaultPageDir, exportHtmlReport } from '../../gateway/bundle/html-report';
import { artifactsDir, ensureRenderer, launchChromium } from '../helpers/browser';
import { PLANTED_SECRET, cleanupStores, newStore, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';

const HOSTILE = `</script><img src=x onerror="document.title='pwned'"><!--<script>alert(1)</script>`;

interface Opened {
  context: BrowserContext;
  page: Page;
  /** every request the page made other than the report itself */
  requests: string[];
  /** CSP violations and page errors */
  problems: string[];
}

describe('HTML report (Chromium, file://)', { timeout: 180_000 }, () => {
  let browser: Browser;
  let store: Store;
  let samples: Samples;
  let work: string;
  let report: string;

  before(async () => {
    if (!fs.existsSync(path.join(defaultPageDir(), 'html-report.js'))) process.env.FLIGHTLOG_REBUILD_RENDERER = '1';
    ensureRenderer();
    delete process.env.FLIGHTLOG_REBUILD_RENDERER;
    store = newStore();
    samples = await recordSamples(store);
    const s = store.rec.openSession({ connection: 'api', protocol: 'http', identity: 'claude', runId: 'run_test1' });
    const c = s.startCommand({ kind: 'http', text: `GET /page?q=${HOSTILE}`, classification: 'read', detail: { method: 'GET', url: '/page' } });
    s.event('request', 'client→upstream', { body: HOSTILE });
    c.finish({ status: 'ok', result: { status: 200, body: HOSTILE } });
    s.close('closed', 'done');
    await store.rec.flush();
    work = tmpDir('flightlog-html-e2e-');
    report = path.join(work, 'report.html');
    await exportHtmlReport(store.db, { sessionIds: [samples.pg, samples.ssh, samples.http, samples.live, s.id], out: report, key: store.key });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    store?.db.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    cleanupStores();
  });

  async function open(file: string, init?: () => void): Promise<Opened> {
    const url = pathToFileURL(file).href;
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const requests: string[] = [];
    const problems: string[] = [];
    context.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    // belt and braces: anything off this file is refused as well as counted
    await context.route((u) => u.href !== url, (route) => route.abort());
    const page = await context.newPage();
    if (init) await page.addInitScript(init);
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(url);
    return { context, page, requests, problems };
  }

  it('verifies in the page and shows the run: commands, a finding, the terminal replay playing', async () => {
    const { context, page, requests, problems } = await open(report);
    const verdict = page.locator('#verdict');
    await page.locator('#verdict[data-state="verified"], #verdict[data-state="failed"]').waitFor();
    const text = await verdict.innerText();
    assert.match(text, /verified, signed by SHA256:/, text);
    assert.ok(text.includes(`signed by ${store.key.fingerprint}`), `the fingerprint flightlog verify prints: ${text}`);
    assert.equal(await verdict.getAttribute('data-state'), 'verified');

    const timeline = page.locator('#timeline');
    for (const cmd of ['SELECT email FROM users WHERE id = 1', 'ls -la', 'POST /echo?x=1', 'DELETE /users']) assert.ok((await timeline.innerText()).includes(cmd), cmd);
    assert.match(await page.locator(`#timeline tr.command.status-blocked`).first().innerText(), /blocked by policy: no deletes/);
    // lineage: the SQL the model call caused links back to it, across sessions
    const caused = page.locator('#timeline tr.command', { hasText: 'SELECT 42' });
    const link = caused.locator('a', { hasText: /^command \d+$/ });
    const target = (await link.getAttribute('href'))!;
    assert.match(await page.locator(target).innerText(), /claude-x: hello/);
    assert.match(text, /1 session was still live at export/);
    const findings = page.locator('#findings .finding-row');
    assert.match(await findings.filter({ hasText: 'guardrail' }).first().innerText(), /guardrail\s+blocked/, 'the guardrail decision');
    assert.match(await findings.filter({ hasText: 'upstream-password' }).first().innerText(), /secret\s+upstream-password\s+[0-9a-f]+/, 'the masked secret, by fingerprint');

    // recorded markup is shown as text: the hostile command is visible, nothing was injected
    assert.ok((await timeline.innerText()).includes(HOSTILE));
    assert.equal(await page.locator('img').count(), 0);
    assert.notEqual(await page.title(), 'pwned');
    assert.ok(!(await page.content()).includes(PLANTED_SECRET));

    const replay = page.locator(`.replay[data-session="${samples.ssh}"]`);
    await replay.locator('select').selectOption('20');
    await replay.locator('button.play').click();
    assert.match((await replay.getAttribute('data-state')) ?? '', /playing|done/);
    await page.waitForFunction((id) => {
      const rows = document.querySelector(`.replay[data-session="${id}"] .xterm-rows`);
      return !!rows && rows.textContent!.includes('total 0') && rows.textContent!.includes('deploy@web-1:~$ exit');
    }, samples.ssh);
    await page.waitForFunction((id) => document.querySelector(`.replay[data-session="${id}"]`)?.getAttribute('data-state') === 'done', samples.ssh);
    assert.match(await replay.locator('.xterm-rows').innerText(), /\[MASKED:/, 'the echoed secret replays masked');

    await page.screenshot({ path: path.join(artifactsDir(), 'html-report-verified.png'), fullPage: true });
    assert.deepEqual(requests, [], 'no network request at all');
    assert.deepEqual(problems, [], 'no CSP violation, no page error (xterm styles admitted by nonce)');
    await context.close();
  });

  it('one flipped byte in a recorded event: red, naming the first bad event', async () => {
    const bytes = fs.readFileSync(report);
    const html = bytes.toString('utf8');
    const block = new RegExp(`data-member="sessions/${samples.pg}/events\\.ndjson">([^<]*)`).exec(html);
    assert.ok(block, 'the events member is in the file as text');
    const line = block[1].split('\n').find((l) => l.includes('a@example.com'))!;
    const seq = (JSON.parse(line) as { seq: number }).seq;
    const at = bytes.indexOf(Buffer.from(line)) + Buffer.from(line).indexOf(Buffer.from('a@example.com'));
    assert.equal(String.fromCharCode(bytes[at]), 'a');
    bytes[at] ^= 0x01;
    const tampered = path.join(work, 'report-tampered.html');
    fs.writeFileSync(tampered, bytes);

    const { context, page, requests, problems } = await open(tampered);
    await page.locator('#verdict[data-state="failed"], #verdict[data-state="verified"]').waitFor();
    const verdict = page.locator('#verdict');
    const text = await verdict.innerText();
    assert.equal(await verdict.getAttribute('data-state'), 'failed', text);
    assert.ok(text.includes(`not verified: sessions/${samples.pg}/events.ndjson: session ${samples.pg}, event ${seq}: the hash does not match the event content`), text);
    assert.equal(await verdict.evaluate((e) => getComputedStyle(e).color), 'rgb(198, 40, 40)', 'visibly red');
    assert.match(await page.title(), /^NOT VERIFIED/);
    assert.equal(await page.locator(`#session-${samples.pg}.bad-event`).count(), 1, 'the session is marked');
    await page.screenshot({ path: path.join(artifactsDir(), 'html-report-tampered.png'), fullPage: true });
    assert.deepEqual(requests, []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('an altered command (outside the chain) names its member, also in red', async () => {
    const bytes = fs.readFileSync(report);
    const needle = Buffer.from('"text":"SELECT email FROM users WHERE id = 1"');
    const at = bytes.indexOf(needle, bytes.indexOf(Buffer.from(`data-member="sessions/${samples.pg}/commands.json"`)));
    assert.ok(at > 0);
    bytes[at + needle.indexOf(Buffer.from('email'))] ^= 0x01;
    const tampered = path.join(work, 'report-command.html');
    fs.writeFileSync(tampered, bytes);
    const { context, page, requests, problems } = await open(tampered);
    await page.locator('#verdict[data-state="failed"], #verdict[data-state="verified"]').waitFor();
    const text = await page.locator('#verdict').innerText();
    assert.ok(text.includes(`not verified: sessions/${samples.pg}/commands.json: its sha256 does not match manifest.json (altered after signing)`), text);
    assert.deepEqual(requests, []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('a browser without WebCrypto Ed25519 says so in red rather than blaming the bundle', async () => {
    const { context, page } = await open(report, () => {
      const subtle = crypto.subtle;
      const importKey = subtle.importKey.bind(subtle) as (...a: unknown[]) => Promise<CryptoKey>;
      (subtle as unknown as { importKey: (...a: unknown[]) => Promise<CryptoKey> }).importKey = (...a: unknown[]) =>
        (a[2] as { name?: string })?.name === 'Ed25519' ? Promise.reject(new DOMException('Unrecognized algorithm name', 'NotSupportedError')) : importKey(...a);
    });
    await page.locator('#verdict[data-state="failed"], #verdict[data-state="verified"]').waitFor();
    const text = await page.locator('#verdict').innerText();
    assert.match(text, /not verified: cannot verify in this browser: this browser has no WebCrypto Ed25519 .* run flightlog verify on the bundle instead/, text);
    await context.close();
  });
});
