/**
 * A secret referenced as `{ env: NAME }` that the gateway's environment lacks (it was started
 * first, the README's own order): the form says so beside the field and what to do, and storing
 * the value in Settings (a 0600 file under the data dir) brings the connection up, listening and
 * logged in upstream, without a restart. The planted value is then looked for in the page, the
 * store, the config file, the logs and the gateway's answers: it is nowhere but its own file.
 * Also: switching a secret from env to file clears the box; the SSH key's placeholder is a path.
 * Against a real PostgreSQL; screenshots test-artifacts/setup-secret-*.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../gateway/config/load';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { execClient } from '../helpers/cli';

const VARIABLE = 'FLIGHTLOG_E2E_APP_DB_PASSWORD';
let gw: UiGateway;
let pg: PostgresServer;
let browser: Browser;
let page: Page;
let token = '';
const pageErrors: string[] = [];
const shot = (name: string) => page.screenshot({ path: path.join(artifactsDir(), `setup-secret-${name}.png`), fullPage: true });

/** Every file under a dir, recursively (the store, its WAL, the config, keys…). */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('a missing env secret, stored in Settings (Chromium, real PostgreSQL)', { timeout: 240_000 }, () => {
  before(async () => {
    assert.equal(process.env[VARIABLE], undefined, 'the variable must be unset for this test');
    pg = await startPostgres();
    gw = await startUiGateway();
    token = gw.addIdentity('claude');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1360, height: 1000 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await pg?.stop();
  });

  it('says what to do about a variable the gateway was started without', async () => {
    await page.goto(gw.url);
    await page.click('[data-testid=nav-settings]');
    await page.click('[data-testid=add-connection]');
    await page.selectOption('[data-testid=field-protocol]', 'postgres');
    await page.fill('[data-testid=field-name]', 'app-db');
    await page.fill('[data-testid=field-listen]', '127.0.0.1:0');
    await page.fill('[data-testid=field-upstream\\.host]', pg.host);
    await page.fill('[data-testid=field-upstream\\.port]', String(pg.port));
    await page.fill('[data-testid=field-upstream\\.user]', pg.app.user);
    await page.fill('[data-testid=field-upstream\\.database]', pg.app.database);
    await page.fill('[data-testid=field-upstream\\.password]', VARIABLE);
    await page.click('[data-testid=save-connection]');
    const message = (await page.locator('[data-testid=error-upstream\\.password]').textContent()) ?? '';
    assert.match(message, new RegExp(`${VARIABLE} is not set in the gateway's environment`));
    assert.match(message, /Store the value in Flightlog here, or export .* and start the gateway again/);
    assert.equal(await page.locator('[data-testid=connection-row]').count(), 0, 'nothing saved');
    await shot('missing-env');
  });

  it('stores the value in Settings: the connection listens and logs in upstream, no restart', async () => {
    await page.fill('[data-testid=store-missing-upstream\\.password-value]', pg.app.password);
    await page.click('[data-testid=store-missing-upstream\\.password-button]');
    const status = page.locator('[data-testid=connection-row][data-connection=app-db] [data-testid=connection-status]');
    await status.locator('.ok:has-text("listening")').waitFor();
    await status.locator('[data-testid=connection-test][data-ok=true]').waitFor();
    assert.match((await status.textContent()) ?? '', /PostgreSQL 15/);
    await shot('stored');

    const file = path.join(gw.dataDir, 'secrets', VARIABLE);
    assert.equal(fs.readFileSync(file, 'utf8'), pg.app.password);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const conn = loadConfig(path.join(gw.dataDir, 'flightlog.yaml')).connections[0];
    assert.deepEqual((conn.upstream as { password?: unknown }).password, { file });

    // the agent's side works with the stored secret: psql through the gateway, token as password
    const { port } = gw.address('app-db');
    const psql = await execClient('psql', ['-X', '-A', '-t', '-c', 'select current_user', `host=127.0.0.1 port=${port} user=claude password=${token} dbname=app sslmode=disable`]);
    assert.equal(psql.code, 0, psql.stderr);
    assert.equal(psql.stdout.trim(), 'app');
  });

  it('never shows or writes the raw value anywhere else', async () => {
    await gw.gateway.recorder.flush();
    const secret = pg.app.password;
    assert.ok(!(await page.content()).includes(secret), 'not in the page');
    assert.equal(await page.inputValue('[data-testid=connection-form] input[type=password]').catch(() => ''), '', 'no box still holds it');
    const auth = { authorization: `Bearer ${gw.gateway.control.token}` };
    for (const route of ['/api/settings', '/api/status', '/api/sessions', '/api/findings']) {
      assert.ok(!(await (await fetch(gw.gateway.control.url + route, { headers: auth })).text()).includes(secret), `not in ${route}`);
    }
    const own = path.join(gw.dataDir, 'secrets', VARIABLE);
    for (const f of filesUnder(gw.dataDir)) {
      if (f === own) continue;
      assert.ok(!fs.readFileSync(f).includes(Buffer.from(secret)), `not in ${path.relative(gw.dataDir, f)}`);
    }
    assert.ok(!gw.logs.join('\n').includes(secret), 'not in the logs');
    assert.deepEqual(pageErrors, []);
  });

  it('stores a missing header secret of an HTTP connection the same way', async () => {
    const seen: string[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(String(req.headers['x-api-key'] ?? '-'));
      res.end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    try {
      const apiKey = 'sk-e2e-header-' + Math.random().toString(36).slice(2);
      await page.click('[data-testid=add-connection]');
      await page.selectOption('[data-testid=field-protocol]', 'http');
      await page.fill('[data-testid=field-name]', 'model');
      await page.fill('[data-testid=field-listen]', '127.0.0.1:0');
      await page.fill('[data-testid=field-upstream\\.url]', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
      await page.fill('[data-testid=header-name]', 'x-api-key');
      await page.fill('[data-testid=header-value]', 'FLIGHTLOG_E2E_MODEL_KEY');
      await page.click('[data-testid=save-connection]');
      await page.locator('[data-testid=error-upstream\\.headers\\.x-api-key]:has-text("FLIGHTLOG_E2E_MODEL_KEY is not set")').waitFor();
      await page.fill('[data-testid=store-missing-upstream\\.headers\\.x-api-key-value]', apiKey);
      await page.click('[data-testid=store-missing-upstream\\.headers\\.x-api-key-button]');
      await page.locator('[data-testid=connection-row][data-connection=model] .ok:has-text("listening")').waitFor();
      const { port } = gw.address('model');
      const res = await fetch(`http://127.0.0.1:${port}/v1/ping`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      assert.equal(seen.at(-1), apiKey, 'the stored value is what the gateway injects upstream');
      assert.ok(!(await page.content()).includes(apiKey));
      await gw.gateway.recorder.flush();
      const own = path.join(gw.dataDir, 'secrets', 'FLIGHTLOG_E2E_MODEL_KEY');
      for (const f of filesUnder(gw.dataDir)) if (f !== own) assert.ok(!fs.readFileSync(f).includes(Buffer.from(apiKey)), `not in ${path.relative(gw.dataDir, f)}`);
      assert.ok(!gw.logs.join('\n').includes(apiKey));
    } finally {
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });

  it('clears the box when a secret switches from env to file; the SSH key asks for a path', async () => {
    await page.click('[data-testid=add-connection]');
    await page.selectOption('[data-testid=field-protocol]', 'ssh');
    await page.selectOption('[data-testid=ref-kind-upstream\\.password]', 'env');
    await page.fill('[data-testid=field-upstream\\.password]', 'DEPLOY_PASSWORD');
    await page.selectOption('[data-testid=ref-kind-upstream\\.password]', 'file');
    assert.equal(await page.inputValue('[data-testid=field-upstream\\.password]'), '', 'the variable name is gone');
    assert.equal(await page.inputValue('[data-testid=ref-kind-upstream\\.privateKey]'), 'file', 'a key is a file by default');
    const keyPlaceholder = (await page.getAttribute('[data-testid=field-upstream\\.privateKey]', 'placeholder')) ?? '';
    assert.match(keyPlaceholder, /^~?\/.*id_ed25519$/, 'a path');
    assert.doesNotMatch(keyPlaceholder, /APP_DB_PASSWORD/);
    await page.selectOption('[data-testid=ref-kind-upstream\\.privateKey]', 'env');
    assert.doesNotMatch((await page.getAttribute('[data-testid=field-upstream\\.privateKey]', 'placeholder')) ?? '', /APP_DB_PASSWORD/);
    await shot('ssh-form');

    // "store a value…": Save first is refused (the value would be dropped), Store keeps it and names its file
    const value = 'deploy-pw-' + Math.random().toString(36).slice(2);
    await page.fill('[data-testid=field-name]', 'web-1');
    await page.selectOption('[data-testid=ref-kind-upstream\\.password]', 'store');
    await page.fill('[data-testid=store-upstream\\.password-value]', value);
    await page.click('[data-testid=save-connection]');
    assert.match((await page.textContent('[data-testid=error-upstream\\.password]')) ?? '', /press Store first/);
    await page.click('[data-testid=store-upstream\\.password-button]');
    const file = path.join(gw.dataDir, 'secrets', 'web-1-password');
    await page.waitForSelector('[data-testid=field-upstream\\.password]');
    assert.equal(await page.inputValue('[data-testid=ref-kind-upstream\\.password]'), 'file');
    assert.equal(await page.inputValue('[data-testid=field-upstream\\.password]'), file);
    assert.equal(fs.readFileSync(file, 'utf8'), value);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(!(await page.content()).includes(value));
    assert.deepEqual(pageErrors, []);
  });
});
