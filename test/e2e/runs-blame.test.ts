/**
 * The run timeline and object blame in the app, in Chromium, over a run of six sessions across
 * protocols written through the gateway's own recorder: a model call whose tool call caused an
 * UPDATE, a failed ALTER in one psql session and its retry in the next, an SFTP edit and a
 * `sed -i` over SSH on the same file, and HTTP calls, one refused by a guardrail. Filters pick
 * commands across sessions; blame lists a table, a file and an HTTP path. Screenshots go to
 * test-artifacts/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { createRun } from '../../gateway/store/runs';
import { HOSTILE_HTML } from './seed';
import type { Protocol } from '../../gateway/common/types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('runs and blame in the app (Chromium)', { timeout: 180_000 }, () => {
  let gw: UiGateway;
  let browser: Browser;
  let page: Page;
  let runId: string;
  let pgRetry: string;
  let modelSession: string;
  let deleteId: number;
  const pageErrors: string[] = [];
  const shots = artifactsDir();
  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const UPDATE = "UPDATE orders SET status = 'shipped' WHERE id = 1";

  before(async () => {
    gw = await startUiGateway();
    gw.addIdentity('claude');
    runId = createRun(gw.gateway.db, { identity: 'claude', argv: ['claude', '-p', 'ship order 1'] }).runId;
    const rec = gw.gateway.recorder;
    const open = (connection: string, protocol: Protocol) => rec.openSession({ connection, protocol, identity: 'claude', runId, clientAddr: '127.0.0.1:50100' });
    const model = open('model', 'http');
    modelSession = model.id;
    const llm = model.startCommand({ kind: 'llm', text: 'claude-sonnet-4: <system-reminder>\nInternal reminder text.\n</system-reminder>\nShip order 1 please', classification: 'write' });
    llm.finish({
      status: 'ok',
      result: {
        newTurns: [{ role: 'user', content: [{ type: 'text', text: '<system-reminder>\nInternal reminder text.\n</system-reminder>' }, { type: 'text', text: 'Ship order 1 please' }] }],
        assistantText: 'Shipping it.',
        toolCalls: [
          { id: 't1', name: 'run_sql', arguments: JSON.stringify({ sql: UPDATE }) },
          { id: 't2', name: 'Edit', arguments: JSON.stringify({ file_path: '/repo/src/ship.ts', old_string: 'status = "new"', new_string: 'status = "shipped"' }) },
          { id: 't3', name: 'apply_patch', arguments: JSON.stringify({ input: '*** Begin Patch\n*** Update File: src/notes.md\n@@\n-old line\n+new line\n*** End Patch' }) },
        ],
      },
    });
    model.close('closed', 'done');
    await sleep(5);
    const pg1 = open('app-db', 'postgres');
    pg1.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN shipped_at timestamptz NOT NULL', classification: 'ddl', targets: ['orders'] }).finish({ status: 'error', error: 'column "shipped_at" contains null values' });
    pg1.close('closed', 'done');
    await sleep(5);
    const pg2 = open('app-db', 'postgres');
    pgRetry = pg2.id;
    pg2.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN shipped_at timestamptz NOT NULL DEFAULT now()', classification: 'ddl', targets: ['orders'] }).finish({ status: 'ok', result: { tag: 'ALTER TABLE', rowCount: null } });
    pg2.startCommand({ kind: 'sql', text: UPDATE, classification: 'write', targets: ['orders'], causedBy: llm.id }).finish({ status: 'ok', result: { tag: 'UPDATE 1', rowCount: 1 } });
    pg2.startCommand({ kind: 'sql', text: `SELECT '${HOSTILE_HTML}' FROM orders`, classification: 'read', targets: ['orders'] }).finish({ status: 'ok', result: { tag: 'SELECT 1', rowCount: 1 } });
    pg2.close('closed', 'done');
    await sleep(5);
    const ssh = open('web-1', 'ssh');
    ssh.startCommand({ kind: 'sftp', text: 'write /etc/app/config.yaml', classification: 'write', targets: ['/etc/app/config.yaml'] }).finish({
      status: 'ok',
      result: { path: '/etc/app/config.yaml', bytesWritten: 20, diff: { before: 'workers: 2\n', after: 'workers: 8\n' } },
    });
    ssh.close('closed', 'done');
    await sleep(5);
    const ssh2 = open('web-1', 'ssh');
    ssh2.startCommand({ kind: 'exec', text: "sed -i 's/8/16/' /etc/app/config.yaml" }).finish({ status: 'ok', result: { exitCode: 0 } });
    ssh2.close('closed', 'done');
    await sleep(5);
    const api = open('api', 'http');
    api.startCommand({ kind: 'http', text: 'GET /v1/users/1', classification: 'read', detail: { method: 'GET', url: '/v1/users/1' } }).finish({ status: 'ok', result: { status: 200 } });
    const del = api.startCommand({ kind: 'http', text: 'DELETE /v1/users/2', classification: 'write', detail: { method: 'DELETE', url: '/v1/users/2' } });
    deleteId = del.id;
    api.finding({ category: 'guardrail', kind: 'no-deletes', direction: 'gateway', commandId: del.id, detail: { rule: 'no-deletes', action: 'deny', outcome: 'denied' } });
    del.finish({ status: 'blocked', error: 'blocked by guardrail "no-deletes"' });
    api.close('closed', 'done');
    await rec.flush();
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=session-row]');
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('the runs list counts what the run did; the run id in the sessions list opens the run', async () => {
    await page.goto(`${gw.gateway.control.url}/#/runs`);
    const row = page.locator(`[data-testid=run-row][data-run="${runId}"]`);
    await row.waitFor();
    // commands, writes, findings, blocked, held
    const cells = (await row.locator('td').allTextContents()).slice(-5);
    assert.deepEqual(cells, ['9', '6', '1', '1', '0']);
    await shot('runs-list');
    await page.goto(`${gw.gateway.control.url}/#/sessions`);
    await page.locator(`[data-testid=session-row][data-session="${pgRetry}"] [data-testid=run-open]`).click();
    await page.waitForSelector('[data-testid=run-timeline]');
    assert.ok(page.url().includes(`#/runs/${runId}`));
  });

  it('the run timeline interleaves every session in time, prompt without reminders, lineage links both ways', async () => {
    await page.goto(`${gw.gateway.control.url}/#/runs/${runId}`);
    await page.waitForSelector('[data-testid=run-step]');
    const labels = await page.locator('[data-testid=step-label]').allTextContents();
    assert.deepEqual(labels, ['S1#1', 'S2#1', 'S3#1', 'S3#2', 'S3#3', 'S4#1', 'S5#1', 'S6#1', 'S6#2']);
    const llm = page.locator('[data-testid=run-step][data-kind=llm]');
    assert.match((await llm.textContent()) ?? '', /Ship order 1 please/);
    assert.doesNotMatch((await llm.textContent()) ?? '', /Internal reminder/);
    assert.match((await llm.locator('[data-testid=tool-call]').first().textContent()) ?? '', /run_sql/);
    assert.equal(await llm.locator('[data-testid=caused]').textContent(), '→ caused S3#2');
    assert.equal(await page.locator('[data-testid=caused-by]').textContent(), '← caused by S1#1');
    assert.match((await page.locator('[data-testid=run-finding]').textContent()) ?? '', /no-deletes · deny → denied on S6#2/);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined, 'recorded HTML stays text');
    // the code the agent wrote on its own machine: one Monaco diff per edit
    assert.deepEqual(await llm.locator('[data-testid=agent-edit-blame]').allTextContents(), ['file:local:/repo/src/ship.ts', 'file:local:src/notes.md']);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=agent-edit] .monaco-diff-editor').length === 2, null, { timeout: 20_000 });
    await shot('run-timeline');
    await llm.locator('[data-testid=agent-edit-blame]').first().click();
    await page.waitForFunction(() => document.querySelector('[data-testid=blame-summary]')?.textContent?.includes('file:local:/repo/src/ship.ts: 1 command'));
    assert.match((await page.locator('[data-testid=blame-entry]').textContent()) ?? '', /Edit \/repo\/src\/ship\.ts/);
    await shot('blame-local-edit');
  });

  it('filters pick commands across sessions: errors only finds the failed ALTER in a closed session', async () => {
    await page.goto(`${gw.gateway.control.url}/#/runs/${runId}`);
    await page.waitForSelector('[data-testid=run-step]');
    await page.getByTestId('filter-errors').check();
    assert.deepEqual(await page.locator('[data-testid=step-label]').allTextContents(), ['S2#1', 'S6#2']);
    await page.getByTestId('filter-errors').uncheck();
    await page.getByTestId('filter-writes').check();
    assert.deepEqual(await page.locator('[data-testid=step-label]').allTextContents(), ['S1#1', 'S2#1', 'S3#1', 'S3#2', 'S4#1', 'S5#1', 'S6#2'], 'the model call that edited files counts as a write');
    await page.getByTestId('filter-protocol').selectOption('ssh');
    assert.deepEqual(await page.locator('[data-testid=step-label]').allTextContents(), ['S4#1', 'S5#1']);
    await page.getByTestId('filter-writes').uncheck();
    await page.getByTestId('filter-protocol').selectOption('');
    await page.getByTestId('filter-findings').check();
    assert.deepEqual(await page.locator('[data-testid=step-label]').allTextContents(), ['S6#2']);
    await shot('run-timeline-findings-only');
    await page.getByTestId('filter-findings').uncheck();
    const replay = page.locator('[data-testid=run-step]:has-text("sed -i") [data-testid=step-replay-link]');
    assert.match((await replay.getAttribute('href')) ?? '', /^#\/replay\/ses[^?]+\?t=\d+$/, 'an SSH step opens the replay at its moment');
    await page.getByTestId('filter-findings').check();
    await page.locator('[data-testid=step-session-link]').click();
    await page.waitForFunction(() => location.hash.startsWith('#/session/'));
  });

  it('a failed ALTER and its fixed retry in the next session are a pair: link both ways and a diff of the texts', async () => {
    await page.goto(`${gw.gateway.control.url}/#/runs/${runId}`);
    await page.waitForSelector('[data-testid=run-step]');
    // only the failed ALTER has a retry; the UPDATE and the SELECT on the same table are other shapes
    const pairs = page.locator('[data-testid=retry-pair]');
    assert.equal(await pairs.count(), 1);
    const failed = page.locator('[data-testid=run-step]', { has: page.locator('[data-testid=retry-pair]') });
    assert.equal(await failed.locator('[data-testid=step-label]').textContent(), 'S2#1');
    assert.equal(await failed.locator('[data-testid=retried-in]').textContent(), '↻ retried in S3#1');
    assert.deepEqual(await page.locator('[data-testid=retry-of]').allTextContents(), ['↻ retry of S2#1']);
    await page.waitForSelector('[data-testid=retry-pair] .monaco-diff-editor', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=retry-pair] .monaco-diff-editor')?.textContent?.replace(/\s/g, ' ').includes('DEFAULT now()'), null, { timeout: 20_000 });
    await failed.locator('[data-testid=retried-in]').click();
    await page.waitForSelector('[data-testid=run-step][data-focused="1"]');
    assert.equal(await page.locator('[data-testid=run-step][data-focused="1"] [data-testid=step-label]').textContent(), 'S3#1');
    await failed.scrollIntoViewIfNeeded();
    await failed.screenshot({ path: path.join(shots, 'review-retry-pair.png') });
  });

  it('the minimap shows activity over time, errors in their own colour; a click jumps to that moment', async () => {
    await page.goto(`${gw.gateway.control.url}/#/runs/${runId}`);
    const map = page.getByTestId('run-minimap');
    await map.waitFor();
    const buckets = page.locator('[data-testid=minimap-bucket]');
    const firsts = await buckets.evaluateAll((els) => els.map((e) => e.getAttribute('data-first')));
    assert.equal(firsts[0], 'S1#1', 'the run starts at the first bucket');
    const errorBuckets = page.locator('[data-testid=minimap-bucket].mm-error');
    assert.deepEqual(await errorBuckets.evaluateAll((els) => els.map((e) => e.getAttribute('data-errors'))), ['1', '1'], 'the failed ALTER and the refused DELETE');
    assert.ok((await page.locator('[data-testid=minimap-bucket].mm-ssh').count()) >= 1, 'SSH work in its protocol colour');
    await page.getByTestId('filter-protocol').selectOption('postgres');
    await errorBuckets.first().click();
    const focused = page.locator('[data-testid=run-step][data-focused="1"]');
    await focused.waitFor();
    assert.equal(await focused.locator('[data-testid=step-label]').textContent(), 'S2#1');
    assert.ok(await focused.evaluate((el) => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }), 'scrolled into view');
    await map.screenshot({ path: path.join(shots, 'review-minimap.png') });
    await shot('review-minimap-jump');
  });

  it('findings name the command as its session numbers it, and link to it', async () => {
    await page.goto(`${gw.gateway.control.url}/#/findings`);
    const link = page.locator('[data-testid=finding-group][data-kind=no-deletes] [data-testid=finding-link]');
    await link.waitFor();
    assert.equal(await link.getByTestId('finding-command').textContent(), '#2');
    await link.click();
    await page.waitForFunction((id) => location.hash.includes(`cmd=${id}`), deleteId);
    await page.waitForSelector(`[data-testid=command-row][data-command="${deleteId}"].selected`);
    assert.equal(await page.locator(`[data-testid=command-row][data-command="${deleteId}"] .cmd-idx`).textContent(), '2');
    await shot('review-finding-to-command');
  });

  it('the session view shows a model call as the human prompt, without <system-reminder> blocks', async () => {
    await page.goto(`${gw.gateway.control.url}/#/session/${modelSession}`);
    const row = page.locator('[data-testid=command-row]').first();
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /claude-sonnet-4: Ship order 1 please/);
    await page.getByTestId('command-detail').waitFor();
    assert.match(await page.getByTestId('conversation').innerText(), /^user\s+Ship order 1 please\s+assistant/im);
    const text = await page.locator('.session-view').innerText();
    assert.doesNotMatch(text, /Internal reminder|system-reminder/);
    await shot('review-session-llm');
  });

  it('blames a table, a file and an HTTP path; the first write after last known good is marked', async () => {
    await page.goto(`${gw.gateway.control.url}/#/blame?target=orders`);
    await page.waitForSelector('[data-testid=blame-entry]');
    assert.match((await page.getByTestId('blame-summary').textContent()) ?? '', /table:public\.orders: 4 commands/);
    assert.deepEqual(await page.locator('[data-testid=blame-entry]').evaluateAll((els) => els.map((e) => e.getAttribute('data-access'))), ['write', 'write', 'write', 'read']);
    assert.match((await page.getByTestId('blame-cause').textContent()) ?? '', /caused by model call #1: claude-sonnet-4: Ship order 1 please/);
    await shot('blame-table');

    await page.getByTestId('blame-target').fill('file:web-1:/etc/app/config.yaml');
    await page.getByTestId('blame-since').fill('2000-01-01T00:00:00Z');
    await page.getByTestId('blame-target').press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid=blame-summary]')?.textContent?.includes('file:web-1:/etc/app/config.yaml: 2 commands'));
    assert.deepEqual(await page.locator('[data-testid=blame-entry]').evaluateAll((els) => els.map((e) => e.getAttribute('data-first'))), ['1', '0']);
    assert.match((await page.locator('[data-testid=blame-entry]').nth(1).textContent()) ?? '', /sed -i/);
    await page.waitForSelector('[data-testid=blame-entry] .monaco-diff-editor', { timeout: 20_000 });
    await shot('blame-file');

    await page.goto(`${gw.gateway.control.url}/#/blame?target=${encodeURIComponent('http:api:/v1/users/*')}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=blame-entry]').length === 2);
    await page.locator('[data-testid=blame-run]').first().click();
    await page.waitForSelector('[data-testid=run-timeline]');
    await shot('blame-http-to-run');
    assert.deepEqual(pageErrors, []);
  });
});
