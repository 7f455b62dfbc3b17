/**
 * The app tells the user when recording stopped: once the store cannot be written, the web UI
 * (Chromium) shows a banner saying so and that no command is forwarded (fail-closed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';

describe('store failure banner (Chromium)', { timeout: 120_000 }, () => {
  let gw: UiGateway;
  let browser: Browser;

  before(async () => {
    gw = await startUiGateway();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('shows no banner while the store writes, and a banner once a commit failed', async () => {
    const page = await browser.newPage();
    await page.goto(gw.url);
    await page.waitForSelector('.status-chip');
    assert.equal(await page.locator('[data-testid="store-banner"]').count(), 0);

    // a trigger that refuses every new command stands in for a full disk
    gw.gateway.db.exec("CREATE TRIGGER flightlog_test_full BEFORE INSERT ON commands BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    const s = gw.gateway.recorder.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    s.startCommand({ kind: 'sql', text: 'select 1' });
    // acknowledged by the journal; the writer thread's load into the store is what fails
    await assert.rejects(gw.gateway.recorder.flush());

    await page.reload();
    const banner = page.locator('[data-testid="store-banner"]');
    await banner.waitFor();
    const text = await banner.innerText();
    assert.match(text, /Recording stopped/);
    assert.match(text, /database or disk is full/);
    assert.match(text, /no new command is forwarded/);
    await page.screenshot({ path: path.join(artifactsDir(), 'store-failure-banner.png') });
    assert.equal(gw.logs.filter((l) => /recording store failed/.test(l)).length, 1);
  });
});
