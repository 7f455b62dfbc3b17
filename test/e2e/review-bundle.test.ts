/**
 * A bundle opened read-only (`flightlog open`) is a finished recording: the app says so, never
 * "live", "idle" or "0 connections", and its empty states speak of the bundle, not of pointing an
 * agent at the gateway.
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

function open(files: string[], dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'open', ...files, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`open printed no URL: ${out}`)), 30000);
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

describe('a bundle opened read-only speaks of the bundle (Chromium)', { timeout: 120_000 }, () => {
  let browser: Browser;
  let child: ChildProcess | undefined;
  const work = tempDir('flightlog-review-bundle-');
  let bundle: string;

  before(async () => {
    ensureRenderer();
    const dir = path.join(work, 'rec');
    const gw = await startTestGateway({ dataDir: dir });
    const s = gw.gateway.recorder.openSession({ connection: 'billing-db', protocol: 'postgres', identity: 'claude' });
    s.startCommand({ kind: 'sql', text: 'SELECT 1', classification: 'read' }).finish({ status: 'ok', result: { rowCount: 1, tag: 'SELECT 1' } });
    s.close();
    await gw.close();
    const { openDb } = await import('../../gateway/store/db');
    const { ensureGatewayKey } = await import('../../gateway/store/chain');
    const db = openDb(dir);
    bundle = path.join(work, 'billing.flightlog');
    await exportBundle(db, { sessionIds: [s.id], out: bundle, key: ensureGatewayKey(dir) });
    db.close();
    browser = await launchChromium();
  });

  after(async () => {
    child?.kill('SIGTERM');
    await browser?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('says read-only, never live, idle or 0 connections; runs and findings are empty of the bundle', async () => {
    const opened = await open([bundle], path.join(work, 'reader'));
    child = opened.child;
    const page = await browser.newPage();
    await page.goto(opened.url);
    await page.getByTestId('session-row').first().waitFor();
    await page.getByTestId('read-only-chip').waitFor();
    const header = await page.locator('header.topbar').innerText();
    assert.match(header, /read-only · 1 bundle/);
    assert.doesNotMatch(header, /\blive\b|idle|0 connections|connecting|offline/i);
    await page.screenshot({ path: path.join(artifactsDir(), 'review-bundle-header.png') });

    await page.goto(`${opened.url.split('/#')[0]}/#/runs`);
    await page.getByText('The opened bundles hold no agent runs.').waitFor();
    assert.doesNotMatch(await page.locator('body').innerText(), /point an agent|gateway:|idle|0 connections/i);
    await page.screenshot({ path: path.join(artifactsDir(), 'review-bundle-runs-empty.png') });

    await page.goto(`${opened.url.split('/#')[0]}/#/findings`);
    await page.getByText('The opened bundles hold no secret sightings and no guardrail decisions.').waitFor();
    await page.close();
  });
});
