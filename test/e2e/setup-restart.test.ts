/**
 * `flightlog ui` as a person runs it, from a directory outside the project (bin/flightlog.js in a
 * child process): the run line Settings offers names this install by its absolute path and runs
 * when pasted there; stopping and starting the UI on the same data dir gives the same URL, and a
 * tab left open goes "offline" and then live again by itself, without a reload. When the old port
 * is taken, the UI starts on a new one (and remembers that). Screenshot: test-artifacts/setup-restart.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, ensureRenderer, launchChromium } from '../helpers/browser';
import { execClient } from '../helpers/cli';
import { reapAtExit, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'flightlog.js');

let home: string;
let dataDir: string;
let browser: Browser;
let page: Page;
let ui: { child: ChildProcess; url: string; stop(): Promise<void> } | null = null;
const pageErrors: string[] = [];

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.FLIGHTLOG_HOME;
  return e;
}

/** `flightlog ui --data-dir D`, started in `home`; resolves with the URL it prints. */
function startUi(): Promise<{ child: ChildProcess; url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'ui', '--data-dir', dataDir], { cwd: home, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  const forget = reapAtExit(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => child.once('exit', () => (forget(), resolve())));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flightlog ui did not print its URL: ${out} ${err}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`flightlog ui exited with ${code}: ${err}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /^ui\s+(\S+)$/m.exec(out)?.[1];
      if (url && /^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve({
          child,
          url,
          stop: async () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
  });
}

const portOf = (url: string) => Number(new URL(url).port);

describe('flightlog ui restarted on the same data dir (Chromium)', { timeout: 240_000 }, () => {
  before(async () => {
    ensureRenderer();
    home = tempDir('flightlog-e2e-home-');
    dataDir = path.join(home, 'data');
    const added = await execClient(process.execPath, [BIN, 'identity', 'add', 'claude', '--data-dir', dataDir], env());
    assert.equal(added.code, 0, added.stderr);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await ui?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('offers a run line naming this install by path, which runs when pasted outside the project', async () => {
    ui = await startUi();
    await page.goto(ui.url);
    await page.click('[data-testid=nav-settings]');
    await page.waitForSelector('[data-testid=run-section]');
    assert.equal(await page.getAttribute('[data-testid=run-help]', 'data-via'), 'node');
    await page.fill('[data-testid=run-agent]', 'printenv FLIGHTLOG_RUN_ID');
    const line = ((await page.textContent('[data-testid=run-command]')) ?? '').trim();
    assert.equal(line, `node ${BIN} run --data-dir ${dataDir} --identity claude -- printenv FLIGHTLOG_RUN_ID`);
    assert.match((await page.textContent('[data-testid=run-help]')) ?? '', /npm link/);
    const ran = await execClient('bash', ['-c', `cd ${home} && ${line}`], env());
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout.trim(), /^run_/);
  });

  it('comes back on the same URL, and the open tab reconnects by itself', async () => {
    assert.ok(ui);
    const first = ui.url;
    await page.click('[data-testid=nav-sessions]');
    await page.locator('[data-testid=feed-state]:has-text("live")').waitFor();
    await page.evaluate(() => ((window as unknown as { stillThisPage: boolean }).stillThisPage = true));

    await ui.stop();
    ui = null;
    await page.locator('[data-testid=feed-state]:has-text("offline")').waitFor();
    assert.equal(fs.readFileSync(path.join(dataDir, 'ui-port'), 'utf8').trim(), String(portOf(first)));

    ui = await startUi();
    assert.equal(ui.url, first, 'the same URL on the same data dir');
    await page.locator('[data-testid=feed-state]:has-text("live")').waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { stillThisPage?: boolean }).stillThisPage), true, 'no reload');
    // the page works against the new gateway process: its status and views load
    await page.click('[data-testid=nav-settings]');
    await page.waitForSelector('[data-testid=identity-row][data-identity=claude]');
    await page.screenshot({ path: path.join(artifactsDir(), 'setup-restart.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  it('starts on a new port when the old one is taken, and keeps that one next time', async () => {
    assert.ok(ui);
    const old = portOf(ui.url);
    await page.goto('about:blank');
    await ui.stop();
    ui = null;
    // another program took the port (it hangs up on whoever calls)
    const squatter = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => squatter.listen(old, '127.0.0.1', r));
    try {
      ui = await startUi();
      assert.notEqual(portOf(ui.url), old);
      assert.equal(fs.readFileSync(path.join(dataDir, 'ui-port'), 'utf8').trim(), String(portOf(ui.url)));
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });
});
