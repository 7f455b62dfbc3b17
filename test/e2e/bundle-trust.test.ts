/**
 * Trust signals of `flightlog open` in Chromium: green only for a signer the reader trusts (named
 * in the banner), amber with the fingerprint and "Trust this key…" for an unknown signer (which
 * the app can then trust, after confirming), and red with no green mark anywhere for a tampered
 * bundle. Every badge, the banner's and each session's, comes from the same verdict.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, ensureRenderer, launchChromium } from '../helpers/browser';
import { startTestGateway } from '../helpers/gateway';
import { addTrustedKey, exportBundle, loadTrustedKeys } from '../../gateway/bundle';
import { keyFingerprint } from '../../gateway/store/chain';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { tempDir } from '../helpers/tmp';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

/** One closed, sealed session recorded in its own data dir (its own gateway key), exported as a bundle. */
async function record(dir: string, connection: string, sql: string): Promise<string> {
  const gw = await startTestGateway({ dataDir: dir });
  const s = gw.gateway.recorder.openSession({ connection, protocol: 'postgres', identity: 'claude' });
  s.startCommand({ kind: 'sql', text: sql, classification: 'read', targets: ['public.invoices'] }).finish({ status: 'ok', result: { columns: ['id'], rows: [['1']], rowCount: 1, tag: 'SELECT 1' } });
  s.close();
  await gw.close();
  const { openDb } = await import('../../gateway/store/db');
  const { ensureGatewayKey } = await import('../../gateway/store/chain');
  const db = openDb(dir);
  const out = path.join(dir, `${connection}.flightlog`);
  await exportBundle(db, { sessionIds: [s.id], out, key: ensureGatewayKey(dir) });
  db.close();
  return out;
}

describe('bundle trust signals (Chromium)', { timeout: 180_000 }, () => {
  let browser: Browser;
  const children: ChildProcess[] = [];
  const work = tempDir('flightlog-trust-e2e-');
  let billing: string;
  let crm: string;
  let tampered: string;

  const open = (files: string[], dataDir: string): Promise<string> => {
    const child = spawn(process.execPath, [BIN, 'open', ...files, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const t = setTimeout(() => reject(new Error(`open printed no URL: ${out} ${err}`)), 30000);
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => reject(new Error(`open exited (${code}): ${err}`)));
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ui\s+(http:\/\/127\.0\.0\.1:\d+\/#token=\S+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
  };

  /** What a person sees: the text of every element in the page, and any element styled green. */
  const greenMarks = (page: Page) => page.locator('.bundle-trusted, .bundle-tag-trusted, .tag.sealed, [data-testid="sealed-badge"]').count();

  before(async () => {
    ensureRenderer();
    billing = await record(path.join(work, 'a'), 'billing-db', 'SELECT id FROM invoices WHERE overdue');
    crm = await record(path.join(work, 'b'), 'crm-db', 'SELECT id FROM invoices WHERE disputed');
    tampered = path.join(work, 'tampered.flightlog');
    const bytes = fs.readFileSync(crm);
    const i = bytes.indexOf(Buffer.from('disputed'));
    assert.ok(i > 0);
    bytes.write('DISPUTED', i);
    fs.writeFileSync(tampered, bytes);
    browser = await launchChromium();
  });

  after(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    await browser?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('a trusted signer: green, named in the banner with its fingerprint', async () => {
    const reader = path.join(work, 'reader-trusted');
    const k = addTrustedKey(reader, path.join(work, 'a', 'gateway-key.pub.pem'), 'alice laptop');
    const url = await open([billing], reader);
    const page = await browser.newPage();
    await page.goto(url);
    const verdict = page.getByTestId('bundle-verdict');
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute('data-trust'), 'trusted');
    const text = await verdict.innerText();
    assert.match(text, /✓ billing-db\.flightlog: verified, 1 sessions, signed by alice laptop/);
    assert.ok(text.includes(k.fingerprint), `the fingerprint is in the banner, not only a tooltip: ${text}`);
    assert.equal(await page.getByTestId('trust-key').count(), 0);
    await page.getByTestId('session-row').first().click();
    const badge = page.getByTestId('bundle-badge');
    await badge.waitFor();
    assert.equal(await badge.getAttribute('data-trust'), 'trusted');
    assert.match(await badge.innerText(), /verified · signed by alice laptop/);
    await page.screenshot({ path: path.join(artifactsDir(), 'trust-trusted.png') });
    await page.close();
  });

  it('an unknown signer: amber with its fingerprint; "Trust this key…" (confirmed) turns it green', async () => {
    const reader = path.join(work, 'reader-unknown');
    const fingerprint = keyFingerprint(fs.readFileSync(path.join(work, 'b', 'gateway-key.pub.pem'), 'utf8'));
    const url = await open([crm], reader);
    const page = await browser.newPage();
    await page.goto(url);
    const verdict = page.getByTestId('bundle-verdict');
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute('data-trust'), 'unknown');
    const text = await verdict.innerText();
    assert.match(text, /⚠ crm-db\.flightlog: intact, 1 sessions, signed by an unknown key SHA256:/);
    assert.ok(text.includes(fingerprint), text);
    assert.doesNotMatch(text, /verified|✓/, 'an unknown signer is never called verified');
    await page.getByTestId('session-row').first().click();
    const badge = page.getByTestId('bundle-badge');
    await badge.waitFor();
    assert.equal(await badge.getAttribute('data-trust'), 'unknown');
    assert.equal(await greenMarks(page), 0, 'nothing green for an unknown signer');
    await page.screenshot({ path: path.join(artifactsDir(), 'trust-unknown.png') });

    // Cancel trusts nothing.
    await page.getByTestId('trust-key').click();
    await page.getByTestId('trust-dialog').waitFor();
    assert.equal(await page.getByTestId('trust-fingerprint').innerText(), fingerprint);
    await page.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await page.getByTestId('trust-dialog').count(), 0);
    assert.deepEqual(loadTrustedKeys(reader), []);

    await page.getByTestId('trust-key').click();
    await page.getByTestId('trust-name').fill('bob ci');
    await page.screenshot({ path: path.join(artifactsDir(), 'trust-confirm.png') });
    await page.getByTestId('trust-confirm').click();
    await page.locator('[data-testid="bundle-verdict"][data-trust="trusted"]').waitFor();
    assert.match(await verdict.innerText(), /✓ crm-db\.flightlog: verified, 1 sessions, signed by bob ci/);
    await page.locator('[data-testid="bundle-badge"][data-trust="trusted"]').waitFor();
    assert.deepEqual(
      loadTrustedKeys(reader).map((k) => [k.name, k.fingerprint]),
      [['bob ci', fingerprint]],
    );
    await page.screenshot({ path: path.join(artifactsDir(), 'trust-unknown-then-trusted.png') });
    await page.close();
  });

  it('a tampered bundle: red in the banner and on its session, no green mark anywhere, and its key cannot be trusted', async () => {
    const reader = path.join(work, 'reader-tampered');
    const url = await open([tampered], reader);
    const page = await browser.newPage();
    await page.goto(url);
    const verdict = page.getByTestId('bundle-verdict');
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute('data-trust'), 'tampered');
    assert.match(await verdict.innerText(), /✗ tampered\.flightlog: not verified/);
    assert.equal(await page.getByTestId('trust-key').count(), 0);
    await page.getByTestId('session-row').first().waitFor();
    assert.doesNotMatch(await page.locator('body').innerText(), /✓/, 'no check mark on the sessions list');
    await page.getByTestId('session-row').first().click();
    const badge = page.getByTestId('bundle-badge');
    await badge.waitFor();
    assert.equal(await badge.getAttribute('data-trust'), 'tampered');
    assert.match(await badge.innerText(), /NOT verified/);
    assert.doesNotMatch(await page.locator('body').innerText(), /✓|sealed/, 'no "✓ sealed" beside "NOT verified"');
    assert.equal(await greenMarks(page), 0);
    await page.screenshot({ path: path.join(artifactsDir(), 'trust-tampered.png') });
    // the route refuses too, whatever a page sends
    const token = decodeURIComponent(url.split('#token=')[1]);
    const fingerprint = keyFingerprint(fs.readFileSync(path.join(work, 'b', 'gateway-key.pub.pem'), 'utf8'));
    const res = await fetch(url.split('/#')[0] + '/api/bundles/trust', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ file: 'tampered.flightlog', fingerprint, name: 'x' }),
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /did not verify/);
    assert.deepEqual(loadTrustedKeys(reader), []);
    await page.close();
  });
});
