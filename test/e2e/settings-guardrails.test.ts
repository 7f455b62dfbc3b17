/**
 * Guardrails edited in the app (Debian's Chromium, real gateway, a local HTTP upstream): the
 * Settings editor shows the rules, a bad rule gets the validator's located message under the
 * editor and nothing is written, a good one saves, the shown rule set version changes, and the
 * next request through the real listener is decided by it. Screenshots: settings-guardrails-*.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../gateway/config/load';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';

let gw: UiGateway;
let browser: Browser;
let page: Page;
let upstream: http.Server;
let token = '';
const seen: string[] = [];
const pageErrors: string[] = [];
const shots = artifactsDir();
const shot = (name: string) => page.screenshot({ path: path.join(shots, `settings-guardrails-${name}.png`), fullPage: true });

/** Replaces the editor's whole text by pasting it, as a user would (typed newlines would be auto-indented). */
async function setEditorText(text: string): Promise<void> {
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await page.click('[data-testid=guardrails-editor] .view-lines');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Control+V');
  await page.waitForFunction(
    (t) => (document.querySelector('[data-testid=guardrails-editor] .view-lines') as HTMLElement | null)?.innerText.replace(/\u00a0/g, ' ').includes(t.split('\n')[1].trim()),
    text,
  );
}

const version = async () => (await page.getAttribute('[data-testid=rules-version]', 'data-version')) ?? '';

describe('settings: guardrails editor (Chromium)', { timeout: 180_000 }, () => {
  before(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startUiGateway({ connections: [{ name: 'api', protocol: 'http', upstream: { url: upstreamUrl }, identities: ['claude'] }] });
    token = gw.addIdentity('claude');
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.gateway.control.url });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  });

  const del = async () => {
    const a = gw.address('api');
    return fetch(`http://${a.host}:${a.port}/api/users/7`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  };

  it('shows no rules yet, with an example and the rule set version', async () => {
    await page.goto(gw.url);
    await page.click('[data-testid=nav-settings]');
    await page.waitForSelector('[data-testid=guardrails-editor] .view-lines');
    assert.equal((await page.textContent('[data-testid=rules-count]'))?.trim(), '0 rules');
    assert.match(await version(), /^[0-9a-f]{64}$/);
    assert.match((await page.textContent('[data-testid=guardrails-section]')) ?? '', /README\.md/);
    assert.equal((await del()).status, 200, 'with no rules the DELETE is forwarded');
  });

  it('a bad rule shows the located error under the editor and writes nothing', async () => {
    const before = await version();
    await setEditorText('guardrails:\n  - name: no-delete\n    match: { http: { method: DELETE } }\n    action: refuse\n');
    await page.click('[data-testid=save-guardrails]');
    await page.waitForSelector('[data-testid=guardrails-error]');
    const msg = (await page.textContent('[data-testid=guardrails-error]')) ?? '';
    assert.match(msg, /^line 4: guardrails\[0\]\.action: expected one of allow, deny, hold/);
    await page.waitForSelector('[data-testid=guardrails-editor] .squiggly-error');
    await shot('error');
    assert.equal(await version(), before);
    assert.equal(fs.existsSync(path.join(gw.dataDir, 'flightlog.yaml')), false, 'nothing written for a refused edit');
  });

  it('saves a rule: the version changes and the next DELETE is denied by it', async () => {
    const before = await version();
    await setEditorText('guardrails:\n  # deletes need the admin console\n  - name: no-delete\n    match: { http: { method: DELETE, path: "/api/*" } }\n    action: deny\n');
    await page.click('[data-testid=save-guardrails]');
    await page.waitForFunction((v) => document.querySelector('[data-testid=rules-version]')?.getAttribute('data-version') !== v, before);
    assert.equal(await page.locator('[data-testid=guardrails-error]').count(), 0);
    assert.equal((await page.textContent('[data-testid=rules-count]'))?.trim(), '1 rule');
    assert.match((await page.textContent('[data-testid=rules-version]')) ?? '', /saved, in force from the next command/);
    await shot('saved');

    const n = seen.length;
    const res = await del();
    assert.equal(res.status, 403);
    assert.match(await res.text(), /blocked by guardrail \\?"no-delete\\?"/);
    assert.equal(seen.length, n, 'the upstream never saw the DELETE');

    const file = path.join(gw.dataDir, 'flightlog.yaml');
    assert.deepEqual(loadConfig(file).guardrails.map((r) => r.name), ['no-delete']);
    assert.match(fs.readFileSync(file, 'utf8'), /# deletes need the admin console/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    // a fresh load of the view shows what was saved
    await page.reload();
    await page.waitForSelector('[data-testid=guardrails-editor] .view-lines');
    assert.notEqual(await version(), before);
    assert.match((await page.textContent('[data-testid=guardrails-editor]')) ?? '', /no-delete/);
    assert.deepEqual(pageErrors, []);
  });
});
