/**
 * Setup in the app, in Debian's Chromium against a real gateway started with no connections:
 * the onboarding panel, an identity created in the UI with its token read once, an HTTP
 * connection added through the form (a bad value first: the validator's own message), the new
 * listener carrying a real request to a local upstream with that token, and the file written.
 * Screenshots go to test-artifacts/settings-*.png.
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
let upstreamUrl: string;
const seen: string[] = [];
const pageErrors: string[] = [];
const shots = artifactsDir();
let token = '';

const shot = (name: string) => page.screenshot({ path: path.join(shots, `settings-${name}.png`), fullPage: true });

describe('settings and onboarding (Chromium)', { timeout: 180_000 }, () => {
  before(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? '-'}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ hello: 'from upstream', path: req.url }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startUiGateway();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.gateway.control.url });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  });

  it('shows the onboarding on first start with no connections', async () => {
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=onboarding]');
    const text = (await page.textContent('[data-testid=onboarding]')) ?? '';
    assert.match(text, /Create an identity/);
    assert.match(text, /Add a connection/);
    assert.match(text, /Run your agent/);
    assert.match(text, /flightlog run .*--identity NAME -- <agent>/);
    await shot('onboarding');
  });

  it('creates an identity and shows its token once', async () => {
    await page.click('[data-testid=onboarding-step-1] a');
    await page.waitForSelector('[data-testid=identities-section]');
    assert.match(await page.evaluate(() => location.hash), /#\/settings\?focus=identity/);
    await page.fill('[data-testid=identity-name]', 'claude');
    await page.click('[data-testid=create-identity]');
    await page.waitForSelector('[data-testid=new-token]');
    token = ((await page.textContent('[data-testid=token-value]')) ?? '').trim();
    assert.ok(token.length >= 20, 'a token is shown');
    assert.match((await page.textContent('[data-testid=new-token]')) ?? '', /you will not see it again/);
    await page.click('[data-testid=token-value-copy]');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token, 'Copy puts the token on the clipboard');
    await page.waitForSelector('[data-testid=identity-row][data-identity=claude]');
    await shot('identity-token');
    await page.click('[data-testid=token-done]');
    await page.waitForSelector('[data-testid=new-token]', { state: 'detached' });
    assert.ok(!(await page.content()).includes(token), 'the token is gone from the page');
    // a reload of the view cannot bring it back either: only its hash is kept
    const settings = await (await fetch(`${gw.gateway.control.url}/api/settings`, { headers: { authorization: `Bearer ${gw.gateway.control.token}` } })).text();
    assert.ok(!settings.includes(token));
  });

  it("shows the validator's message for a bad form value, inline", async () => {
    await page.click('[data-testid=add-connection]');
    await page.waitForSelector('[data-testid=connection-form]');
    assert.equal(await page.inputValue('[data-testid=field-identities]'), 'claude', 'identities default to the existing ones');
    await page.selectOption('[data-testid=field-protocol]', 'http');
    await page.fill('[data-testid=field-name]', 'web');
    await page.fill('[data-testid=field-listen]', '127.0.0.1:0');
    await page.fill('[data-testid=field-upstream\\.url]', 'ftp://example.com');
    await page.click('[data-testid=save-connection]');
    await page.waitForSelector('[data-testid=form-error]');
    // beside its field, in the form's words: no YAML path for a file that does not exist yet
    const msg = (await page.textContent('[data-testid=error-upstream\\.url]')) ?? '';
    assert.equal(msg, 'expected an http(s) URL, got "ftp://example.com"');
    assert.doesNotMatch((await page.textContent('[data-testid=form-error]')) ?? '', /connections\[0\]/);
    assert.match((await page.getAttribute('[data-testid=field-upstream\\.url]', 'class')) ?? '', /invalid/);
    await shot('form-error');
    assert.equal(fs.existsSync(path.join(gw.dataDir, 'flightlog.yaml')), false, 'nothing written for a refused form');
  });

  it('adds an http connection through the form, sees it listening, and carries a real request with the token', async () => {
    await page.fill('[data-testid=field-upstream\\.url]', upstreamUrl);
    await page.fill('[data-testid=header-name]', 'x-upstream-note');
    await page.selectOption('[data-testid=header-kind]', 'text');
    await page.fill('[data-testid=header-value]', 'via-settings');
    await page.click('[data-testid=save-connection]');
    await page.waitForSelector('[data-testid=connection-row][data-connection=web] [data-testid=connection-status]:has-text("listening")');
    const status = (await page.textContent('[data-testid=connection-row][data-connection=web] [data-testid=connection-status]')) ?? '';
    const address = /listening (\S+)/.exec(status)?.[1] ?? '';
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    assert.match((await page.textContent('[data-testid=run-command]')) ?? '', /flightlog run (--data-dir \S+ )?--identity claude -- claude$/);
    await page.fill('[data-testid=run-agent]', 'aider --yes');
    assert.match((await page.textContent('[data-testid=run-command]')) ?? '', /--identity claude -- aider --yes$/);
    await page.waitForSelector('[data-testid=run-section]:has-text("It reaches web")');
    await shot('connections');

    const res = await fetch(`http://${address}/v1/ping`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { hello: 'from upstream', path: '/v1/ping' });
    assert.equal(seen.at(-1), 'GET /v1/ping auth=-', 'the gateway token stops at the gateway');
    const denied = await fetch(`http://${address}/v1/ping`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(denied.status, 401);

    const file = path.join(gw.dataDir, 'flightlog.yaml');
    const config = loadConfig(file);
    assert.deepEqual(config.connections.map((c) => c.name), ['web']);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    // the sessions view: onboarding gone, the request's session listed
    await gw.gateway.recorder.flush();
    await page.click('[data-testid=nav-sessions]');
    await page.waitForSelector('[data-testid=session-row]:has-text("web")');
    assert.equal(await page.locator('[data-testid=onboarding]').count(), 0);
    await shot('sessions-after');
    assert.deepEqual(pageErrors, []);
  });

  it('edits the connection in place (its other fields kept) and revokes the identity', async () => {
    await page.click('[data-testid=nav-settings]');
    await page.click('[data-testid=connection-row][data-connection=web] button:has-text("Edit")');
    await page.waitForSelector('[data-testid=connection-form]');
    assert.equal(await page.inputValue('[data-testid=header-value]'), 'via-settings', 'the form starts from the running config');
    await page.selectOption('[data-testid=field-mask]', 'live');
    await page.click('[data-testid=save-connection]');
    await page.waitForSelector('[data-testid=connection-form]', { state: 'detached' });
    await page.waitForSelector('[data-testid=connection-row][data-connection=web] [data-testid=connection-status]:has-text("listening")');
    const web = loadConfig(path.join(gw.dataDir, 'flightlog.yaml')).connections[0];
    assert.equal(web.mask, 'live');
    assert.deepEqual((web.upstream as { headers?: unknown }).headers, { 'x-upstream-note': 'via-settings' });

    await page.click('[data-testid=identity-row][data-identity=claude] [data-testid=revoke-identity]');
    await page.waitForSelector('[data-testid=identity-row][data-identity=claude]:has-text("revoked")');
    const address = gw.address('web');
    const res = await fetch(`http://${address.host}:${address.port}/v1/ping`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, 'a revoked token no longer passes');
    await shot('revoked');
    assert.deepEqual(pageErrors, []);
  });
});
