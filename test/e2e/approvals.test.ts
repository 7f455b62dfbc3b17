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
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';

const GUARDRAILS = [{ name: 'unbounded-delete', match: { sql: { statement: ['delete'], where: 'absent' } }, action: 'hold', reason: 'a DELETE without WHERE empties the table' }];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

let pg: PostgresServer;
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

const rows = (): string => pg.psql('SELECT count(*) FROM t', 'app').trim();
/** Monaco lays text out with non-breaking spaces. */
const commandText = async (): Promise<string> => ((await page.textContent('[data-testid=approval] [data-testid=code-view] .view-lines')) ?? '').replace(/\u00a0/g, ' ');

describe('approvals in the web UI (Chromium)', { timeout: 180_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    gw = await startUiGateway({
      connections: [{ name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] }],
      env: { APP_PW: pg.app.password },
      guardrails: GUARDRAILS,
    });
    token = gw.addIdentity('claude');
    pg.psql('CREATE TABLE t (id int); ALTER TABLE t OWNER TO app; INSERT INTO t VALUES (1), (2), (3);', 'app');
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
});
