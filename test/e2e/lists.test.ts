/**
 * Lists and tables in Chromium: the sessions list sorts by any column (a header click, again to
 * flip it, with an indicator), filters by run (typed, or a click on a run id), and shows every
 * header whole; the result grid opens a cell's whole value and copies a row as JSON or CSV to
 * the clipboard.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { createRun } from '../../gateway/store/runs';

describe('lists and tables (Chromium)', { timeout: 180_000 }, () => {
  let gw: UiGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let runA: string;
  let runB: string;
  const pageErrors: string[] = [];
  const LONG = `${'x'.repeat(900)}-the-end`;
  const shot = (name: string) => page.screenshot({ path: path.join(artifactsDir(), `${name}.png`) });

  before(async () => {
    gw = await startUiGateway();
    gw.addIdentity('alpha');
    gw.addIdentity('beta');
    runA = createRun(gw.gateway.db, { identity: 'alpha', argv: ['agent-a'] }).runId;
    runB = createRun(gw.gateway.db, { identity: 'beta', argv: ['agent-b'] }).runId;
    const open = (connection: string, identity: string, runId: string | null, commands: number) => {
      // each session in a later millisecond than the one before, so "newest first" has one answer
      for (const t = Date.now(); Date.now() === t; );
      const s = gw.gateway.recorder.openSession({ connection, protocol: 'postgres', identity, runId });
      for (let i = 0; i < commands; i++) s.startCommand({ kind: 'sql', text: `SELECT ${i}` }).finish({ status: 'ok', result: { rows: [[String(i)]], rowCount: 1, tag: 'SELECT 1' } });
      return s;
    };
    // started in this order: the default list is newest first
    open('conn-b', 'carol', runA, 5).close();
    open('conn-c', 'alice', runB, 1).close();
    open('conn-a', 'bob', runA, 12).close();
    const grid = open('grid-db', 'dave', null, 0);
    grid
      .startCommand({ kind: 'sql', text: 'SELECT id, note, payload FROM notes' })
      .finish({
        status: 'ok',
        result: {
          columns: [{ name: 'id', type: 23 }, { name: 'note', type: 25 }, { name: 'payload', type: 3802 }],
          rows: [
            ['1', LONG, null],
            ['2', 'say "hi", then\nleave', { a: 1 }],
          ],
          rowCount: 2,
          tag: 'SELECT 2',
        },
      });
    grid.close();
    await gw.gateway.recorder.flush();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.gateway.control.url });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  const column = (cls: string) => page.locator(`[data-testid=session-row] .${cls}`).allInnerTexts();

  it('shows every column header whole', async () => {
    await page.goto(gw.url);
    await page.locator('[data-testid=session-row]').nth(3).waitFor();
    const cut = await page.locator('.shead [role=columnheader]').evaluateAll((els) =>
      els.filter((e) => e.scrollWidth > e.clientWidth + 1 || (e.firstElementChild as HTMLElement).scrollWidth > (e.firstElementChild as HTMLElement).clientWidth + 1).map((e) => e.textContent),
    );
    assert.deepEqual(cut, [], 'no header is truncated');
    // the smallest window the shell allows: the list scrolls sideways instead of cutting headers
    await page.setViewportSize({ width: 900, height: 800 });
    const narrow = await page.locator('.shead [role=columnheader]').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
    assert.deepEqual(narrow, [], 'no header is truncated at 900 px');
    assert.ok(await page.getByTestId('session-list-wrap').evaluate((e) => e.scrollWidth > e.clientWidth), 'the list scrolls sideways');
    await shot('sessions-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
    assert.deepEqual(await column('c-conn'), ['grid-db', 'conn-a', 'conn-c', 'conn-b'], 'newest first by default');
    assert.equal(await page.getByTestId('sort-started').locator('.sort-mark').innerText(), '▼');
  });

  it('sorts by any column; a second click reverses it; the indicator follows', async () => {
    await page.getByTestId('sort-connection').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=session-row] .c-conn')?.textContent === 'conn-a');
    assert.deepEqual(await column('c-conn'), ['conn-a', 'conn-b', 'conn-c', 'grid-db']);
    assert.equal(await page.locator('.shead [aria-sort=ascending]').textContent(), 'connection▲');
    await page.getByTestId('sort-connection').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=session-row] .c-conn')?.textContent === 'grid-db');
    assert.deepEqual(await column('c-conn'), ['grid-db', 'conn-c', 'conn-b', 'conn-a']);
    assert.equal(await page.locator('.shead [aria-sort=descending]').textContent(), 'connection▼');
    await page.getByTestId('sort-commands').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=session-row] .c-ident')?.textContent === 'dave');
    assert.deepEqual(await column('c-ident'), ['dave', 'alice', 'carol', 'bob'], 'numbers sort as numbers (1 < 5 < 12)');
    await page.getByTestId('sort-identity').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=session-row] .c-ident')?.textContent === 'alice');
    assert.deepEqual(await column('c-ident'), ['alice', 'bob', 'carol', 'dave']);
    assert.match(await page.evaluate(() => location.hash), /sort=identity&order=asc/, 'the order is in the address, so a reload keeps it');
    await shot('sessions-sorted');
    // the API names what it accepts; nothing from the query reaches SQL
    const token = decodeURIComponent(gw.url.split('#token=')[1]);
    const bad = await fetch(`${gw.gateway.control.url}/api/sessions?sort=started_us;DROP%20TABLE%20sessions`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /^sort must be one of started, status, identity/);
  });

  it('filters by run: a click on a run id, or typed', async () => {
    await page.locator('[data-testid=session-row]:has-text("bob") [data-testid=run-link]').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=session-row]').length === 2);
    assert.equal(await page.getByTestId('filter-run').inputValue(), runA);
    assert.deepEqual(await column('c-ident'), ['bob', 'carol'], 'still sorted by identity within the run');
    assert.match(await page.evaluate(() => location.hash), /^#\/sessions\?/, 'the click filtered instead of opening the session');
    await shot('sessions-run-filter');
    await page.getByTestId('filter-run').fill(runB);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=session-row]').length === 1);
    assert.deepEqual(await column('c-ident'), ['alice']);
    await page.getByTestId('filter-run').fill('');
    await page.locator('[data-testid=session-row]').nth(3).waitFor();
    assert.equal(await page.locator('[data-testid=session-row]').count(), 4);
    // a session names its run as a link to the run's sessions
    await page.locator('[data-testid=session-row]:has-text("carol") .c-ident').click();
    await page.getByTestId('session-run-link').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=session-row]').length === 2);
    assert.equal(await page.getByTestId('filter-run').inputValue(), runA);
  });

  it('opens a cell to its whole value and copies the row as JSON and CSV', async () => {
    await page.evaluate(() => (location.hash = '#/sessions'));
    await page.locator('[data-testid=session-row]:has-text("grid-db") .c-conn').click();
    await page.getByTestId('result-table').waitFor();
    const cell = page.locator('[data-testid=rt-cell]').nth(1);
    assert.ok((await cell.innerText()).endsWith('…'), 'the grid truncates a long value');
    await cell.click();
    const panel = page.getByTestId('row-panel');
    await panel.waitFor();
    assert.equal(await page.getByTestId('cell-value').innerText(), LONG, 'the whole value');
    await shot('result-cell-expanded');

    await page.getByTestId('copy-json').click();
    await page.getByTestId('copy-status').filter({ hasText: 'copied row as JSON' }).waitFor();
    const json = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(json, JSON.stringify({ id: '1', note: LONG, payload: null }, null, 2));
    await page.getByTestId('row-panel-close').click();
    assert.equal(await panel.count(), 0);

    // a row with quotes, a comma, a newline and JSON: CSV quotes it as RFC 4180 says
    await page.locator('[data-testid=rt-rownum]').nth(1).click();
    await page.getByTestId('copy-csv').click();
    await page.getByTestId('copy-status').filter({ hasText: 'copied row as CSV' }).waitFor();
    const csv = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(csv, 'id,note,payload\r\n2,"say ""hi"", then\nleave","{""a"":1}"\r\n');
    await shot('result-row-copied');
    await page.keyboard.press('Escape');
    await page.getByTestId('row-panel').waitFor({ state: 'detached' });
    assert.deepEqual(pageErrors, []);
  });
});
