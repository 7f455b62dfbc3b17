/**
 * The renderer in web mode, in Debian's Chromium, against a real gateway: the session list,
 * search, a SQL result, a model call with its caused command, a terminal replay that seeks,
 * diffs, findings, live updates, and hostile recorded content that must stay inert.
 * Screenshots of each view go to test-artifacts/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { seed, type Seeded } from './seed';

let gw: UiGateway;
let pg: PostgresServer | null = null;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let data: Seeded;
const dialogs: string[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];
const shots = artifactsDir();

const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`) });

function psql(sql: string, token: string): Promise<string> {
  const a = gw.address('real-db');
  return new Promise((resolve, reject) => {
    execFile('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' } }, (err, out, stderr) =>
      err ? reject(new Error(`psql: ${stderr.trim()}`)) : resolve(out),
    );
  });
}

/**
 * Runs a UI action that seeks the replay and waits for that seek to finish: the player counts
 * finished seeks, so an earlier seek's figure (which may even be the same number) never passes.
 */
async function seeking(action: () => Promise<unknown>): Promise<void> {
  const done = Number(await page.getAttribute('[data-testid=seek-ms]', 'data-seeks'));
  await action();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=seek-ms]')?.getAttribute('data-seeks')) > n, done);
  assert.doesNotMatch((await page.textContent('[data-testid=seek-ms]')) ?? '', /seek failed/);
}

async function pwned(): Promise<unknown> {
  return page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned);
}

describe('web UI (Chromium)', { timeout: 240_000 }, () => {
  before(async () => {
    try {
      pg = await startPostgres();
    } catch {
      pg = null; // no PostgreSQL binaries here: the recorded sessions still cover the views
    }
    const connections = pg
      ? [{ name: 'real-db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] }]
      : [];
    gw = await startUiGateway({ connections, env: pg ? { APP_PW: pg.app.password } : {} });
    const token = gw.addIdentity('claude');
    data = await seed(gw.gateway.recorder);
    if (pg) {
      pg.psql("CREATE TABLE invoices (id int primary key, customer text, amount numeric); ALTER TABLE invoices OWNER TO app; INSERT INTO invoices SELECT g, 'cust-' || g, g * 10 FROM generate_series(1, 50) g;", 'app');
      await psql('SELECT id, customer, amount FROM invoices WHERE amount > 200 ORDER BY id', token);
      await gw.gateway.recorder.flush();
    }
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.gateway.control.url });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.dismiss();
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await pg?.stop();
  });

  it('serves the UI with a strict CSP and no directory traversal', async () => {
    const base = gw.gateway.control.url;
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /worker-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    for (const p of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fpackage.json', '/.tsbuildinfo']) {
      const r = await fetch(`${base}${p}`);
      assert.notEqual(r.status, 200, p);
    }
    const api = await fetch(`${base}/api/sessions/${data.sshSession}/replay`);
    assert.equal(api.status, 401, 'replay routes need the token');
  });

  it('lists sessions newest first and updates live', async () => {
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=session-row]');
    assert.equal(await page.evaluate(() => location.hash), '#/sessions', 'the token leaves the address bar');
    await page.waitForSelector('[data-testid=feed-state]:has-text("live")');
    const before = await page.locator('[data-testid=session-row]').count();
    assert.ok(before >= 3);
    const live = gw.gateway.recorder.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'late-agent' });
    live.startCommand({ kind: 'sql', text: 'SELECT 1' }).finish({ status: 'ok', result: { rows: [['1']], rowCount: 1, tag: 'SELECT 1' } });
    await page.waitForSelector('[data-testid=session-row]:has-text("late-agent") [data-testid=live-badge]', { timeout: 10_000 });
    await shot('sessions');
    live.close();
  });

  it('searches commands and jumps to the match with its SQL result', async () => {
    await page.fill('[data-testid=search]', 'refunded OR orders');
    await page.fill('[data-testid=search]', 'created_at');
    await page.waitForSelector('[data-testid=search-hit]');
    await shot('search');
    await page.click('[data-testid=search-hit]');
    await page.waitForSelector(`[data-testid=command-detail][data-command="${data.selectCommand}"]`);
    await page.waitForSelector('[data-testid=result-table] .rt-row');
    const summary = await page.textContent('[data-testid=sql-summary]');
    assert.match(summary ?? '', /400 rows/);
    assert.ok((await page.textContent('[data-testid=result-table]'))?.includes('customer-1'));
    await page.waitForSelector('[data-testid=code-view] .view-lines');
    assert.ok(await page.locator('[data-testid=code-view] .mtk1, [data-testid=code-view] span[class^=mtk]').count() > 1, 'SQL is highlighted');
    await shot('session-sql');
  });

  it('shows hostile SQL results and HTTP bodies as text', async () => {
    await page.goto(`${gw.gateway.control.url}/#/session/${data.pgSession}?cmd=${data.hostileSqlCommand}`);
    await page.waitForSelector('[data-testid=result-table] .rt-row');
    assert.ok((await page.textContent('[data-testid=result-table]'))?.includes('<script>'));
    await page.goto(`${gw.gateway.control.url}/#/session/${data.httpSession}?cmd=${data.hostileHttpCommand}`);
    await page.waitForSelector('[data-testid=http-response-body]');
    assert.ok((await page.textContent('[data-testid=http-response-body]'))?.includes('onerror='));
    assert.equal(await page.locator('.detail img, .detail script').count(), 0);
    await shot('session-http-hostile');
    assert.equal(await pwned(), undefined);
  });

  it('shows a model call as a conversation linked to the command it caused', async () => {
    await page.goto(`${gw.gateway.control.url}/#/session/${data.httpSession}?cmd=${data.llmCommand}`);
    await page.waitForSelector('[data-testid=conversation] [data-testid=tool-call]');
    await page.waitForSelector('[data-testid=tool-call] [data-testid=caused-link]');
    await shot('session-llm');
    await page.click('[data-testid=caused-link]');
    await page.waitForSelector(`[data-testid=command-detail][data-command="${data.causedSqlCommand}"]`);
    await page.waitForSelector('[data-testid=caused-by-link]');
  });

  it('goes from one session straight to another (hash change, no reload) and shows the second', async () => {
    await page.goto(`${gw.gateway.control.url}/#/session/${data.pgSession}`);
    await page.waitForSelector(`[data-testid=session-head][data-session="${data.pgSession}"]`);
    await page.waitForSelector('[data-testid=command-detail]');
    for (const next of [data.sshSession, data.httpSession, data.pgSession]) {
      await page.evaluate((h) => {
        location.hash = h;
      }, `#/session/${next}`);
      await page.waitForSelector(`[data-testid=session-head][data-session="${next}"]`);
      // it opens on its own first command and stays there (the old view used to route back)
      await page.waitForFunction((id) => new RegExp(`^#/session/${id}\\?cmd=\\d+$`).test(location.hash), next);
      const cmd = Number(/cmd=(\d+)/.exec(await page.evaluate(() => location.hash))![1]);
      await page.waitForSelector(`[data-testid=command-detail][data-command="${cmd}"]`);
      assert.equal(await page.locator(`[data-testid=session-head][data-session="${next}"]`).count(), 1);
      assert.equal(await page.locator('[data-testid=session-head]').count(), 1);
    }
    // and back through history
    await page.goBack();
    await page.waitForSelector(`[data-testid=session-head][data-session="${data.httpSession}"]`);
  });

  it('records a real psql session through the gateway and shows its rows', async (t) => {
    if (!pg) return t.skip('PostgreSQL is not installed');
    await page.goto(`${gw.gateway.control.url}/#/sessions?connection=real-db`);
    await page.waitForSelector('[data-testid=session-row]');
    await page.click('[data-testid=session-row]');
    await page.waitForSelector('[data-testid=command-row]:has-text("invoices")');
    await page.click('[data-testid=command-row]:has-text("invoices")');
    await page.waitForSelector('[data-testid=result-table] .rt-row');
    assert.ok((await page.textContent('[data-testid=result-table]'))?.includes('cust-21'));
    await shot('session-real-postgres');
  });

  it('replays a terminal session and seeks through keyframes fast', async () => {
    await page.evaluate(() => navigator.clipboard.writeText('clipboard-sentinel'));
    await page.goto(`${gw.gateway.control.url}/#/replay/${data.sshSession}`);
    await page.waitForSelector('[data-testid=terminal] .xterm-rows');
    await page.waitForSelector('[data-testid=seek-ms][data-ms]:not([data-ms=""])');
    const markers = await page.locator('[data-testid=seek-marker]').count();
    assert.ok(markers >= 5, `command markers on the seek bar (${markers})`);
    // Seek to the end: the last command's output must be on screen.
    const bar = await page.locator('[data-testid=seekbar]').boundingBox();
    assert.ok(bar);
    const seeks: number[] = [];
    for (const f of [0.99, 0.3, 0.75, 0.5, 0.999]) {
      await seeking(() => page.mouse.click(bar.x + bar.width * f, bar.y + bar.height / 2));
      seeks.push(Number(await page.getAttribute('[data-testid=seek-ms]', 'data-ms')));
    }
    await page.waitForFunction(() => document.querySelector('[data-testid=terminal] .xterm-rows')?.textContent?.includes('REPLAY-END-MARKER'));
    assert.ok(Math.max(...seeks) < 1000, `seek times ${seeks.join(', ')} ms`);
    // Step back to a command and play a little at 16×.
    await seeking(() => page.click('[data-testid=prev-command]'));
    await page.waitForFunction(() => (document.querySelector('[data-testid=terminal] .xterm-rows')?.textContent ?? '').trim().length > 0);
    await shot('replay');
    await page.selectOption('[data-testid=speed]', '16');
    await page.click('[data-testid=play-pause]');
    await page.waitForTimeout(600);
    await page.click('[data-testid=play-pause]');
    // The hostile output: no title change, no link, nothing on the clipboard.
    await page.goto(`${gw.gateway.control.url}/#/replay/${data.sshSession}?t=0`);
    await page.waitForSelector('[data-testid=terminal] .xterm-rows');
    await page.waitForSelector('[data-testid=seek-ms][data-seeks="1"]');
    for (let i = 0; i < 3; i++) await seeking(() => page.click('[data-testid=next-command]'));
    await page.waitForFunction(() => document.querySelector('[data-testid=terminal] .xterm-rows')?.textContent?.includes('after-hostile'));
    const rows = (await page.textContent('[data-testid=terminal] .xterm-rows')) ?? '';
    assert.ok(rows.includes('click-me'), 'the link text shows as text');
    assert.ok(!rows.includes('PWNED-TITLE') && !rows.includes('cHduZWQ'), 'control strings are dropped, not printed');
    assert.equal(await page.title(), 'Flightlog');
    assert.equal(await page.locator('[data-testid=terminal] a').count(), 0);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'clipboard-sentinel');
    await shot('replay-hostile');
  });

  it('replays a protocol session as its timeline', async () => {
    await page.goto(`${gw.gateway.control.url}/#/replay/${data.pgSession}`);
    await page.waitForSelector('[data-testid=protocol-timeline]');
    await page.click('[data-testid=next-command]');
    await page.click('[data-testid=next-command]');
    await page.waitForSelector('[data-testid=protocol-timeline] .proto-row');
    await shot('replay-protocol');
  });

  it('diffs a retried migration, an SFTP write and two picked commands', async () => {
    await page.goto(`${gw.gateway.control.url}/#/diffs/${data.pgSession}`);
    await page.waitForSelector('[data-testid=diff-retry]');
    await page.waitForSelector('[data-testid=diff-view] .editor.modified .view-lines');
    await page.waitForFunction(() => document.querySelector('[data-testid=diff-view]')?.textContent?.includes('DEFAULT'));
    await shot('diff-retry');
    await page.goto(`${gw.gateway.control.url}/#/diffs/${data.sshSession}`);
    await page.waitForSelector('[data-testid=diff-file]');
    await page.waitForFunction(() => document.querySelector('[data-testid=diff-view]')?.textContent?.includes('feature_x'));
    await shot('diff-sftp');
    await page.goto(`${gw.gateway.control.url}/#/diffs/${data.pgSession}?a=${data.selectCommand}&b=${data.causedSqlCommand}`);
    // Monaco renders spaces as no-break spaces
    await page.waitForFunction(() => document.querySelector('[data-testid=diff-view]')?.textContent?.replace(/\u00a0/g, ' ').includes('total > 100'));
  });

  it('groups findings by kind and fingerprint and links into the session', async () => {
    await page.goto(`${gw.gateway.control.url}/#/findings`);
    await page.waitForSelector('[data-testid=finding-group][data-kind=aws-access-key]');
    const text = (await page.textContent('[data-testid=finding-group][data-kind=aws-access-key]')) ?? '';
    assert.match(text, /\[MASKED:aws-access-key:a1b2c3d4\]/);
    assert.match(text, /seen 2×/);
    await shot('findings');
    await page.click('[data-testid=finding-group][data-kind=aws-access-key] [data-testid=finding-link] >> nth=0');
    await page.waitForSelector('[data-testid=command-detail]');
    assert.match(await page.evaluate(() => location.hash), new RegExp(`#/session/${data.pgSession}\\?cmd=\\d+`));
  });

  it('ran nothing hostile and broke no CSP rule', async () => {
    assert.equal(await pwned(), undefined);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });
});
