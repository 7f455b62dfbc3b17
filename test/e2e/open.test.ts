/**
 * `flightlog open`: a lead receives bundles and reads them offline in the same UI, read-only,
 * clearly marked verified (or not), several at once and searchable together.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { artifactsDir, ensureRenderer, launchChromium } from '../helpers/browser';
import { startTestGateway } from '../helpers/gateway';
import { exportBundle } from '../../gateway/bundle';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { tempDir } from '../helpers/tmp';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

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

function open(files: string[], dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'open', ...files, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`open printed no URL: ${out} ${err}`)), 30000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ui\s+(http:\/\/127\.0\.0\.1:\d+\/#token=\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1] });
      }
    });
  });
}

describe('flightlog open (Chromium)', { timeout: 180_000 }, () => {
  let browser: Browser;
  const children: ChildProcess[] = [];
  const work = tempDir('flightlog-open-e2e-');
  let good: string;
  let other: string;
  let tampered: string;

  before(async () => {
    ensureRenderer();
    good = await record(path.join(work, 'a'), 'billing-db', 'SELECT id FROM invoices WHERE overdue');
    other = await record(path.join(work, 'b'), 'crm-db', 'SELECT id FROM invoices WHERE disputed');
    // Altered content under the original signature.
    tampered = path.join(work, 'tampered.flightlog');
    const bytes = fs.readFileSync(other);
    const i = bytes.indexOf(Buffer.from('disputed'));
    assert.ok(i > 0);
    bytes.write('DISPUTED', i);
    fs.writeFileSync(tampered, bytes);
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    await browser?.close();
  });

  it('opens two verified bundles read-only, marked as such, searchable together', async () => {
    const { child, url } = await open([good, other], path.join(work, 'reader'));
    children.push(child);
    const page = await browser.newPage();
    await page.goto(url);
    const banner = page.getByTestId('bundle-banner');
    await banner.waitFor();
    assert.match(await banner.innerText(), /Read-only/);
    // signed by keys this reader never trusted: intact, never "verified" in green
    assert.match(await banner.innerText(), /billing-db\.flightlog: intact, 1 sessions, signed by an unknown key SHA256:/);
    assert.match(await banner.innerText(), /crm-db\.flightlog: intact/);
    await page.getByTestId('session-row').nth(1).waitFor();
    assert.equal(await page.getByTestId('session-row').count(), 2);
    await page.getByTestId('search').fill('invoices');
    await page.getByTestId('search-hit').nth(1).waitFor();
    assert.equal(await page.getByTestId('search-hit').count(), 2, 'one search over both bundles');
    await page.getByTestId('search-hit').first().click();
    await page.getByTestId('bundle-badge').waitFor();
    assert.match(await page.getByTestId('bundle-badge').innerText(), /imported, intact · unknown signer/);
    await page.screenshot({ path: path.join(artifactsDir(), 'open-bundles.png') });
    // Read-only: the write routes are refused.
    const token = decodeURIComponent(url.split('#token=')[1]);
    const res = await fetch(url.split('/#')[0] + '/api/runs', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' });
    assert.equal(res.status, 405);
    await page.close();
  });

  it('a tampered bundle is still readable but clearly marked NOT verified', async () => {
    const { child, url } = await open([tampered], path.join(work, 'reader2'));
    children.push(child);
    const page = await browser.newPage();
    await page.goto(url);
    const banner = page.getByTestId('bundle-banner');
    await banner.waitFor();
    assert.match(await banner.innerText(), /✗ tampered\.flightlog: not verified/);
    await page.getByTestId('session-row').first().click();
    await page.getByTestId('bundle-badge').waitFor();
    assert.match(await page.getByTestId('bundle-badge').innerText(), /NOT verified/);
    await page.screenshot({ path: path.join(artifactsDir(), 'open-tampered.png') });
    await page.close();
  });
});
