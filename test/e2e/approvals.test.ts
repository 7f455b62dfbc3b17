/**
 * The approval loop from the app, in Debian's Chromium against a real gateway and a real
 * PostgreSQL: a guardrail holds psql's unbounded DELETE, the banner and the nav badge appear on
 * their own (live feed), the Approvals view shows the held (masked) command and its rule, and
 * Approve lets exactly that DELETE run while Deny refuses the next one with the denier's name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { PendingApproval } from '../../gateway/common/api-types';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';

const GUARDRAILS = [{ name: 'unbounded-delete', match: { sql: { statement: ['delete'], where: 'absent' } }, action: 'hold', reason: 'a DELETE without WHERE empties the table' }];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

let pg: PostgresServer;
let fx: LlmFixture;
const MODEL_KEY = 'sk-ant-api03-MODELKEY' + 'e2Wm3Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);
let gw: UiGateway;
let browser: Browser;
let page: Page;
let token: string;
const pageErrors: string[] = [];
const shots = artifactsDir();

/** psql through the gateway; resolves with its exit code whatever it is. */
function psql(sql: string): Promise<Ran> {
  const a = gw.address('db');
  return new Promise((resolve) => {
    const child = execFile('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
    child.stdin?.end();
  });
}

/** The control API as the CLI or another window would call it. */
async function control(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(gw.gateway.control.url + route, {
    method,
    headers: { authorization: `Bearer ${gw.gateway.control.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Polls the pending list until it holds `n` approvals. */
async function pendingCount(n: number): Promise<PendingApproval[]> {
  const end = Date.now() + 20_000;
  for (;;) {
    const list = (await control('GET', '/api/approvals')).json as PendingApproval[];
    if (list.length === n) return list;
    if (Date.now() > end) throw new Error(`timed out waiting for ${n} pending approvals (have ${list.length})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What Electron's preload would expose, recording the notifications the app asks for. */
const FAKE_BRIDGE = `
  window.__notes = [];
  window.flightlog = {
    platform: 'linux',
    gatewayState: async () => ({ state: 'starting' }),
    restartGateway: async () => ({ state: 'starting' }),
    openBundleDialog: async () => null,
    notify: async (title, body) => { window.__notes.push(title + ' | ' + body); return true; },
    setLiveCount: async () => null,
    onGatewayState: () => () => undefined,
    onBundleOpened: () => () => undefined,
  };
`;

const rows = (): string => pg.psql('SELECT count(*) FROM t', 'app').trim();
/** Monaco lays text out with non-breaking spaces. */
const commandText = async (): Promise<string> => ((await page.textContent('[data-testid=approval] [data-testid=code-view] .view-lines')) ?? '').replace(/\u00a0/g, ' ');

describe('approvals in the web UI (Chromium)', { timeout: 180_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    fx = await startLlmFixture({ apiKey: MODEL_KEY, script: { text: 'Emptying t.', tool: { name: 'run_sql', input: { sql: 'DELETE FROM t' } } } });
    gw = await startUiGateway({
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] },
        { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
      ],
      env: { APP_PW: pg.app.password, MODEL_KEY },
      guardrails: GUARDRAILS,
    });
    token = gw.addIdentity('claude');
    pg.psql('CREATE TABLE t (id int); ALTER TABLE t OWNER TO app; INSERT INTO t VALUES (1), (2), (3); ANALYZE t;', 'app');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=feed-state]:has-text("live")');
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await pg?.stop();
    await fx?.close();
  });

  it('a held DELETE raises the banner on any view; Approve in the app lets psql finish and the rows go', async () => {
    assert.equal(await page.locator('[data-testid=approvals-banner]').count(), 0, 'no banner while nothing waits');
    const held = psql('DELETE FROM t');
    const banner = await page.waitForSelector('[data-testid=approvals-banner]', { timeout: 20_000 });
    assert.equal(await banner.textContent(), '1 command waits for approval');
    assert.equal(await page.textContent('[data-testid=nav-approvals-count]'), '1');
    assert.equal(rows(), '3', 'nothing reached PostgreSQL while pending');

    await banner.click();
    await page.waitForSelector('[data-testid=approval] [data-testid=code-view] .view-lines:has-text("DELETE")');
    assert.equal(await page.evaluate(() => location.hash), '#/approvals');
    assert.match(await commandText(), /^DELETE FROM t\s*$/);
    const rule = (await page.textContent('[data-testid=approval-rule]')) ?? '';
    assert.match(rule, /unbounded-delete/);
    assert.match(rule, /a DELETE without WHERE empties the table/);
    assert.equal(await page.textContent('[data-testid=approval-identity]'), 'claude');
    assert.equal(await page.textContent('[data-testid=approval-tables]'), 't');
    assert.match((await page.textContent('[data-testid=approval-estimate]')) ?? '', /estimate ~3 rows \(Delete \(Seq Scan\)\)/);
    assert.equal(await page.locator('[data-testid=approve-run]').count(), 0, 'no run, no "Approve for this run"');
    assert.match((await page.textContent('[data-testid=approval-expires]')) ?? '', /expires in \d+m \d\ds/);
    const sessionHref = (await page.getAttribute('[data-testid=approval-session]', 'href')) ?? '';
    assert.match(sessionHref, /^#\/session\/.+/);
    await page.screenshot({ path: path.join(shots, 'approvals.png') });

    await page.click('[data-testid=approve]');
    const ran = await held;
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), 'DELETE 3');
    assert.equal(rows(), '0', 'the approved DELETE ran upstream');
    await page.waitForSelector('[data-testid=approval-decided]:has-text("Approved by control-api")');
    await page.waitForSelector('[data-testid=approvals-banner]', { state: 'detached' });
    await page.waitForSelector('[data-testid=approval]', { state: 'detached' });
    assert.equal(await page.locator('[data-testid=nav-approvals-count]').count(), 0);
  });

  it('Deny with a reason: psql gets the error naming the denier, the rows stay, a planted secret stays masked', async () => {
    pg.psql('INSERT INTO t VALUES (4), (5);', 'app');
    // the upstream password is a secret the gateway knows by value: it must never reach the page
    const secret = pg.app.password;
    const held = psql(`DELETE FROM t /* ${secret} */`);
    await page.waitForSelector('[data-testid=approvals-banner]:has-text("1 command waits for approval")', { timeout: 20_000 });
    await page.waitForSelector('[data-testid=approval] [data-testid=code-view] .view-lines:has-text("DELETE")');
    assert.match(await commandText(), /^DELETE FROM t \/\* .*MASKED.* \*\/\s*$/);
    await page.fill('[data-testid=approval-reason]', 'not on a Friday');
    await page.screenshot({ path: path.join(shots, 'approvals-deny.png') });
    await page.click('[data-testid=deny]');
    const ran = await held;
    assert.notEqual(ran.code, 0);
    assert.match(ran.stderr, /blocked by guardrail "unbounded-delete": denied by control-api \(not on a Friday\)/);
    assert.equal(rows(), '2', 'the denied DELETE never ran');
    await page.waitForSelector('[data-testid=approval-decided]:has-text("Denied by control-api")');
    await page.waitForSelector('[data-testid=approvals-banner]', { state: 'detached' });
    assert.ok(!(await page.content()).includes(secret), 'the secret is not on the page');
    assert.deepEqual(pageErrors, []);
  });

  it('Electron: a new hold raises one desktop notification; a decision made elsewhere shows who, and a stale Approve gets one 409 line', async () => {
    pg.psql('INSERT INTO t VALUES (6), (7);', 'app');
    const first = psql('DELETE FROM t');
    const [a] = await pendingCount(1);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      await context.addInitScript(FAKE_BRIDGE);
      const shell = await context.newPage();
      shell.on('pageerror', (e) => pageErrors.push(e.message));
      await shell.goto(gw.url);
      await shell.waitForSelector('[data-testid=feed-state]:has-text("live")');
      await shell.click('[data-testid=nav-approvals]');
      await shell.waitForSelector(`[data-testid=approval][data-id="${a.id}"]`);

      const second = psql('DELETE FROM t');
      await shell.waitForSelector('[data-testid=approvals-banner]:has-text("2 commands wait for approval")', { timeout: 20_000 });
      assert.equal(await shell.textContent('[data-testid=nav-approvals-count]'), '2');
      await shell.waitForFunction(() => (window as unknown as { __notes: string[] }).__notes.length > 0);
      const notes = await shell.evaluate(() => (window as unknown as { __notes: string[] }).__notes);
      assert.deepEqual(notes, ['Flightlog: a command waits for approval | claude on db: unbounded-delete'], 'only the hold that arrived while open notifies');
      const both = await pendingCount(2);
      const b = both.find((x) => x.id !== a.id)!;

      // the list answer is frozen so the decided approval stays on screen: its Approve is stale
      await shell.route('**/api/approvals', (route) => route.fulfill({ json: both }));
      const denied = await control('POST', `/api/approvals/${a.id}`, { decision: 'deny', by: 'bob', reason: 'elsewhere' });
      assert.equal(denied.status, 200);
      await shell.waitForSelector('[data-testid=approval-decided]:has-text("Denied by bob")');
      await shell.click(`[data-testid=approval][data-id="${a.id}"] [data-testid=approve]`);
      await shell.waitForSelector(`[data-testid=approval-decided].error-line:has-text("approval ${a.id} was already decided")`);
      await shell.waitForSelector(`[data-testid=approval][data-id="${a.id}"]`, { state: 'detached' });
      const firstRan = await first;
      assert.match(firstRan.stderr, /denied by bob \(elsewhere\)/);
      await shell.unroute('**/api/approvals');

      await shell.click(`[data-testid=approval][data-id="${b.id}"] [data-testid=approve]`);
      const secondRan = await second;
      assert.equal(secondRan.code, 0, secondRan.stderr);
      assert.equal(rows(), '0');
      await shell.waitForSelector('[data-testid=approvals-banner]', { state: 'detached' });
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  it('Approve for this run: the next held DELETE of the same run runs by itself, recorded as approved for the run', async () => {
    pg.psql('INSERT INTO t VALUES (8), (9);', 'app');
    const started = await control('POST', '/api/runs', { identity: 'claude', argv: ['agent'] });
    const run = started.json as { runId: string; token: string };
    const a = gw.address('db');
    const inRun = (sql: string): Promise<Ran> =>
      new Promise((resolve) => {
        const child = execFile('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: run.token, PGCONNECT_TIMEOUT: '10' }, timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? 1 : 0, stdout: String(stdout), stderr: String(stderr) }),
        );
        child.stdin?.end();
      });
    try {
      const m = gw.address('model');
      const asked = await fetch(`http://${m.host}:${m.port}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': run.token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'empty the table t' }] }),
      });
      assert.equal(asked.status, 200);
      await asked.text();
      const first = inRun('DELETE FROM t');
      await page.click('[data-testid=nav-approvals]');
      await page.waitForSelector('[data-testid=approve-run]', { timeout: 20_000 });
      assert.match((await page.textContent('[data-testid=approval-cause]')) ?? '', /asked by the model reply to: claude-sonnet-4-5: .*empty the table t/);
      assert.match((await page.getAttribute('[data-testid=approval-cause-link]', 'href')) ?? '', /^#\/session\/.+\?cmd=\d+$/);
      await page.screenshot({ path: path.join(shots, 'approvals-run.png') });
      await page.click('[data-testid=approve-run]');
      // the decided line shows for a few seconds: read it before waiting on psql, which may be slow under load
      await page.waitForSelector(`[data-testid=approval-decided]:has-text("for the rest of run ${run.runId}")`);
      assert.equal((await first).code, 0);
      pg.psql('INSERT INTO t VALUES (10);', 'app');
      const second = await inRun('DELETE FROM t');
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout.trim(), 'DELETE 1', 'ran without asking again');
      assert.equal(rows(), '0');
      assert.deepEqual(pageErrors, []);
    } finally {
      await control('POST', `/api/runs/${run.runId}/end`, { exitCode: 0 });
    }
  });
});
