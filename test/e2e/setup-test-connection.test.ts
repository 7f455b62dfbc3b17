/**
 * The connection form reports every field error at once, beside its field, in the form's words
 * (no `flightlog.yaml:7: connections[0]…` for a file that does not exist yet), and **Test
 * connection** logs in upstream: the real PostgreSQL's version, or its exact error for a wrong
 * password; the real sshd's software and host key fingerprint, or the refused login for a wrong
 * key. Saving runs the same test and shows it on the connection's row.
 * Screenshots: test-artifacts/setup-test-*.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { startSshd, type Sshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';

let gw: UiGateway;
let pg: PostgresServer;
let sshd: Sshd;
let browser: Browser;
let page: Page;
let files: string;
const pageErrors: string[] = [];
const shot = (name: string) => page.screenshot({ path: path.join(artifactsDir(), `setup-test-${name}.png`), fullPage: true });
const esc = (id: string) => id.replace(/\./g, '\\.');

async function fillRef(field: string, kind: 'env' | 'file', value: string): Promise<void> {
  await page.selectOption(`[data-testid=ref-kind-${esc(field)}]`, kind);
  await page.fill(`[data-testid=field-${esc(field)}]`, value);
}

async function testResult(): Promise<{ ok: string | null; text: string }> {
  await page.click('[data-testid=test-connection]');
  const result = page.locator('[data-testid=test-result]');
  await result.waitFor();
  return { ok: await result.getAttribute('data-ok'), text: (await result.textContent()) ?? '' };
}

describe('connection form: all errors at once, Test connection (Chromium, real PostgreSQL and sshd)', { timeout: 300_000 }, () => {
  before(async () => {
    [pg, sshd] = await Promise.all([startPostgres(), startSshd()]);
    files = tempDir('flightlog-e2e-secrets-');
    fs.writeFileSync(path.join(files, 'pg-good'), pg.app.password, { mode: 0o600 });
    fs.writeFileSync(path.join(files, 'pg-bad'), 'not-the-password', { mode: 0o600 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'stranger', '-f', path.join(files, 'stranger_ed25519')]);
    gw = await startUiGateway();
    gw.addIdentity('claude');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1360, height: 1000 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(gw.url);
    await page.click('[data-testid=nav-settings]');
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await Promise.all([pg?.stop(), sshd?.stop()]);
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  it('reports every bad field at once, beside the field, in the form’s words', async () => {
    await page.click('[data-testid=add-connection]');
    await page.selectOption('[data-testid=field-protocol]', 'postgres');
    await page.fill('[data-testid=field-listen]', 'nowhere');
    await page.fill('[data-testid=field-upstream\\.port]', 'fifty');
    await page.fill('[data-testid=field-identities]', '');
    await page.click('[data-testid=save-connection]');
    await page.locator('[data-testid=error-name]').waitFor();
    const expected: Record<string, RegExp> = {
      name: /^required: a connection name$/,
      listen: /expected host:port, got "nowhere"/,
      'upstream.host': /^required: a host name$/,
      'upstream.port': /expected a port number 0-65535, got "fifty"/,
      'upstream.user': /^required: a user name$/,
      identities: /^required: a list of identity names/,
    };
    for (const [field, re] of Object.entries(expected)) {
      assert.match((await page.locator(`[data-testid=error-${esc(field)}]`).textContent()) ?? '', re, field);
      assert.match((await page.getAttribute(`[data-testid=field-${esc(field)}]`, 'class')) ?? '', /invalid/, `${field} is marked`);
    }
    const form = (await page.textContent('[data-testid=connection-form]')) ?? '';
    assert.match(form, /6 fields need a fix before this can be saved/);
    assert.doesNotMatch(form, /connections\[|flightlog\.yaml:\d/, 'no YAML paths for a form');
    await shot('all-errors');
    assert.equal(fs.existsSync(path.join(gw.dataDir, 'flightlog.yaml')), false, 'nothing written');
  });

  it('Test connection: the real PostgreSQL answers with its version, or its exact error', async () => {
    await page.fill('[data-testid=field-name]', 'app-db');
    await page.fill('[data-testid=field-listen]', '127.0.0.1:0');
    await page.fill('[data-testid=field-identities]', 'claude');
    await page.fill('[data-testid=field-upstream\\.host]', pg.host);
    await page.fill('[data-testid=field-upstream\\.port]', String(pg.port));
    await page.fill('[data-testid=field-upstream\\.user]', pg.app.user);
    await page.fill('[data-testid=field-upstream\\.database]', pg.app.database);
    await fillRef('upstream.password', 'file', path.join(files, 'pg-good'));
    const good = await testResult();
    assert.equal(good.ok, 'true', good.text);
    assert.match(good.text, /logged in to PostgreSQL 15\.\d+( \([^)]*\))? at 127\.0\.0\.1:\d+ as app, database app/);
    assert.equal(await page.locator('[data-testid^=error-]').count(), 0, 'the earlier errors are gone');
    await shot('pg-ok');

    await fillRef('upstream.password', 'file', path.join(files, 'pg-bad'));
    const bad = await testResult();
    assert.equal(bad.ok, 'false');
    assert.match(bad.text, /FATAL 28P01 password authentication failed for user "app"/);
    await shot('pg-wrong-password');
    assert.ok(!(await page.content()).includes(pg.app.password));
  });

  it('runs the test on save and shows it on the row', async () => {
    await page.click('[data-testid=save-connection]');
    const status = page.locator('[data-testid=connection-row][data-connection=app-db] [data-testid=connection-status]');
    await status.locator('[data-testid=connection-test][data-ok=false]').waitFor();
    const text = (await status.textContent()) ?? '';
    assert.match(text, /listening/);
    assert.match(text, /password authentication failed for user "app"/, 'listening, but the upstream login is refused: said on the row');
    await shot('saved-wrong-password');

    await page.click('[data-testid=connection-row][data-connection=app-db] button:has-text("Edit")');
    await fillRef('upstream.password', 'file', path.join(files, 'pg-good'));
    await page.click('[data-testid=save-connection]');
    await status.locator('[data-testid=connection-test][data-ok=true]').waitFor();
    assert.match((await status.textContent()) ?? '', /PostgreSQL 15/);

    // the row's Test logs in again with what the config names now (the password file changed)
    fs.writeFileSync(path.join(files, 'pg-good'), 'rotated-elsewhere');
    try {
      await page.click('[data-testid=connection-row][data-connection=app-db] [data-testid=retest-connection]');
      await status.locator('[data-testid=connection-test][data-ok=false]').waitFor();
      assert.match((await status.textContent()) ?? '', /password authentication failed/);
    } finally {
      fs.writeFileSync(path.join(files, 'pg-good'), pg.app.password);
    }
  });

  it('Test connection: the real sshd shows its software and host key, or refuses a wrong key', async () => {
    await page.click('[data-testid=add-connection]');
    await page.selectOption('[data-testid=field-protocol]', 'ssh');
    await page.fill('[data-testid=field-name]', 'web-1');
    await page.fill('[data-testid=field-listen]', '127.0.0.1:0');
    await page.fill('[data-testid=field-upstream\\.host]', sshd.host);
    await page.fill('[data-testid=field-upstream\\.port]', String(sshd.port));
    await page.fill('[data-testid=field-upstream\\.user]', sshd.user);
    await fillRef('upstream.privateKey', 'file', sshd.userKeyPath);
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${sshd.hostKeyPath}.pub`], { encoding: 'utf8' }).split(/\s+/)[1];
    const good = await testResult();
    assert.equal(good.ok, 'true', good.text);
    assert.match(good.text, new RegExp(`logged in to ${sshd.user}@127\\.0\\.0\\.1:${sshd.port}: server OpenSSH_\\S+`));
    assert.ok(good.text.includes(fp), `the host key fingerprint ${fp} is shown: ${good.text}`);
    assert.match((await page.textContent('[data-testid=test-host-key]')) ?? '', /not pinned yet: the first login pins it/);
    await shot('ssh-ok');

    await fillRef('upstream.privateKey', 'file', path.join(files, 'stranger_ed25519'));
    const bad = await testResult();
    assert.equal(bad.ok, 'false');
    assert.match(bad.text, new RegExp(`login refused for user '${sshd.user}' \\(All configured authentication methods failed\\)`));
    assert.ok(bad.text.includes(fp), 'the server and its key are still named');
    await shot('ssh-wrong-key');
    assert.deepEqual(pageErrors, []);
  });
});
