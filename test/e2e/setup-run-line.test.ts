/**
 * The copyable `flightlog run` line works when pasted: the line is copied from the page (Settings
 * and the welcome card) with its Copy button and run by bash, with a trivial agent after `--`.
 * Here the gateway runs from the project itself, so the line is `npx flightlog run …` and the page
 * says where it works and how to put plain `flightlog` on PATH. (The line of an install run from
 * elsewhere, `node /abs/bin/flightlog.js run …`, is pasted in setup-restart.test.ts.)
 * Screenshot: test-artifacts/setup-run-line.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { execClient, type Ran } from '../helpers/cli';

const ROOT = path.resolve(__dirname, '..', '..', '..');

let gw: UiGateway;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

/** A person's shell: cd somewhere, paste the line (the gateway answers meanwhile: no blocking spawn). */
function paste(line: string, cwd: string): Promise<Ran> {
  return execClient('bash', ['-c', `cd '${cwd.replace(/'/g, `'\\''`)}' && ${line}`], { FLIGHTLOG_HOME: '' });
}

describe('the pasted run line (Chromium)', { timeout: 180_000 }, () => {
  before(async () => {
    gw = await startUiGateway();
    gw.addIdentity('claude');
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.gateway.control.url });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('copies a line from Settings that bash runs from the project, routed through this gateway', async () => {
    await page.goto(gw.url);
    await page.click('[data-testid=nav-settings]');
    await page.waitForSelector('[data-testid=run-section]');
    await page.fill('[data-testid=run-agent]', 'printenv FLIGHTLOG_RUN_ID');
    await page.click('[data-testid=run-command-copy]');
    const line = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(line, /^npx flightlog run --data-dir \S+ --identity claude -- printenv FLIGHTLOG_RUN_ID$/);
    assert.equal(await page.getAttribute('[data-testid=run-help]', 'data-via'), 'npx');
    const help = (await page.textContent('[data-testid=run-help]')) ?? '';
    assert.ok(help.includes(ROOT), `says where the npx line works: ${help}`);
    assert.match(help, /npm link/);
    await page.screenshot({ path: path.join(artifactsDir(), 'setup-run-line.png'), fullPage: true });

    const ran = await paste(line, ROOT);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout.trim(), /^run_\S+$/, 'the agent ran inside a Flightlog run');
    assert.doesNotMatch(ran.stderr, /command not found/);

    // the line for any other directory names this install by its path
    const anywhere = ((await page.textContent('[data-testid=run-anywhere]')) ?? '').replace(/ …$/, '');
    assert.match(anywhere, /^node \/\S+\/bin\/flightlog\.js run --data-dir \S+$/);
    const elsewhere = await paste(`${anywhere} --identity claude -- printenv FLIGHTLOG_RUN_ID`, '/');
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    assert.match(elsewhere.stdout.trim(), /^run_/);
  });

  it('shows the same working line on the welcome card', async () => {
    await page.click('[data-testid=nav-sessions]');
    await page.waitForSelector('[data-testid=onboarding]');
    const shown = ((await page.textContent('[data-testid=onboarding-step-3] code')) ?? '').trim();
    assert.match(shown, /^npx flightlog run --data-dir \S+ --identity claude -- <agent>$/);
    const ran = await paste(shown.replace('<agent>', 'true'), ROOT);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(pageErrors, []);
  });
});
