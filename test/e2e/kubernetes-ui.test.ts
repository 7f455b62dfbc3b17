/**
 * A kubectl change in the web UI (Chromium): the command detail and the Diffs view show the
 * object before and after as a Monaco diff, recorded the way the Kubernetes listener records it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';

let gw: UiGateway;
let browser: Browser;
let page: Page;
let sessionId = '';
let commandId = 0;

describe('kubectl before/after in the web UI', { timeout: 120_000 }, () => {
  before(async () => {
    gw = await startUiGateway({});
    const s = gw.gateway.recorder.openSession({ connection: 'prod-cluster', protocol: 'kubernetes', identity: 'claude', clientAddr: '127.0.0.1:50001' });
    sessionId = s.id;
    const c = s.startCommand({ kind: 'kubectl', text: 'scale deployment web -n prod --replicas=3', classification: 'write', targets: ['k8s:deployments.apps/prod/web'] });
    commandId = c.id;
    const obj = (replicas: number) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'prod' }, spec: { replicas, template: { spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } } } });
    c.finish({ status: 'ok', result: { method: 'PATCH', status: 200, before: obj(1), after: obj(3) } });
    s.close('closed');
    await gw.gateway.recorder.flush();
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    // the URL `flightlog ui` prints carries the control token; the app keeps it for the next pages
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=session-row], .sessions-view, .view', { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('the command detail shows what changed as a diff', async () => {
    await page.goto(`${gw.gateway.control.url}/#/session/${encodeURIComponent(sessionId)}?cmd=${commandId}`);
    await page.waitForSelector('[data-testid=kube-change] .editor.modified .view-lines');
    await page.waitForFunction(() => /"replicas": 3/.test(document.querySelector('[data-testid=kube-change] .editor.modified')?.textContent?.replace(/\u00a0/g, ' ') ?? ''));
    const original = (await page.textContent('[data-testid=kube-change] .editor.original')) ?? '';
    assert.match(original.replace(/\u00a0/g, ' '), /"replicas": 1/);
  });

  it('the Diffs view lists the object by its target', async () => {
    await page.goto(`${gw.gateway.control.url}/#/diffs/${encodeURIComponent(sessionId)}`);
    await page.waitForSelector('[data-testid=diff-file]');
    assert.match((await page.textContent('[data-testid=diff-file]')) ?? '', /k8s:deployments\.apps\/prod\/web/);
    await page.waitForFunction(() => /"replicas": 3/.test(document.querySelector('[data-testid=diff-view]')?.textContent?.replace(/\u00a0/g, ' ') ?? ''));
  });
});
