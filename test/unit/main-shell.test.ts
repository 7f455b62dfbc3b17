/**
 * main/main.ts itself, loaded with the stand-in `electron` module (no Electron binary can be
 * fetched here) and the REAL gateway as its child: on ready it locks the renderer down, registers
 * every IPC channel, shows the "starting" page, then loads the gateway's UI URL read from
 * control.json; it refuses foreign navigations and windows, and on quit it stops the gateway
 * (which seals its sessions) before letting the app go.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { app, electron, invokeAs, opened, permissions, registeredChannels, StandInWindow } from '../helpers/electron-stand-in';
import { readyUrl } from '../../main/gateway-process';
import type { GatewayState } from '../../main/bridge-types';
import { reapAtExit, tempDir } from '../helpers/tmp';

const waitFor = async (what: string, ok: () => boolean, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('main: the Electron shell on a stand-in electron module', { timeout: 120_000 }, () => {
  const dataDir = tempDir('flightlog-shell-');
  let win: StandInWindow;
  let gatewayPid: number | null = null;
  const unreap = reapAtExit(() => {
    if (gatewayPid) process.kill(gatewayPid, 'SIGKILL');
  });

  before(async () => {
    process.argv = [process.execPath, 'dist/main/main.js', '--data-dir', dataDir];
    require('../../main/main');
    app.becomeReady();
    await waitFor('the main window', () => StandInWindow.all.length === 1);
    win = StandInWindow.all[0];
  });

  after(async () => {
    if (!app.quitted) app.quit();
    await waitFor('the app to quit', () => app.quitted).catch(() => undefined);
    unreap();
  });

  it('opens one locked-down window and registers every IPC channel', () => {
    const prefs = win.options.webPreferences as Record<string, unknown>;
    assert.equal(prefs.contextIsolation, true);
    assert.equal(prefs.sandbox, true);
    assert.equal(prefs.nodeIntegration, false);
    assert.equal(prefs.nodeIntegrationInSubFrames, false);
    assert.equal(prefs.webSecurity, true);
    assert.match(String(prefs.preload), /dist\/main\/preload\.js$/);
    assert.ok(fs.existsSync(String(prefs.preload)), 'the preload it names was built');
    assert.deepEqual(registeredChannels(), ['bundle:open-dialog', 'gateway:restart', 'gateway:state', 'notify', 'recording:live-count']);
    assert.ok(electron.Menu.menu, 'an application menu is set');
  });

  it('shows the starting page, then the gateway UI from control.json', async () => {
    assert.match(win.loaded[0], /^data:text\/html/);
    assert.match(decodeURIComponent(win.loaded[0]), /Starting the gateway/);
    await waitFor('the gateway UI', () => win.loaded.some((u) => u.startsWith('http://127.0.0.1:')));
    const control = JSON.parse(fs.readFileSync(path.join(dataDir, 'control.json'), 'utf8')) as { url: string; pid: number };
    gatewayPid = control.pid;
    const url = win.loaded.find((u) => u.startsWith('http://'))!;
    assert.equal(url, readyUrl(dataDir, control.pid));
    const token = decodeURIComponent(url.split('#token=')[1]);
    assert.equal((await fetch(`${control.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const states = win.webContents.sent.filter(([c]) => c === 'gateway:state').map(([, s]) => (s as GatewayState).state);
    assert.deepEqual(states.slice(-1), ['ready']);
    // the window now shows a trusted origin: its calls are answered
    const state = (await invokeAs(win.webContents, win.webContents.frame, 'gateway:state', null)) as GatewayState;
    assert.equal(state.state, 'ready');
  });

  it('refuses foreign navigations and windows; links open in the browser, http(s) only', async () => {
    const ui = win.webContents.getURL();
    assert.equal(win.webContents.navigate('https://evil.example/phish'), false);
    assert.equal(win.webContents.navigate('file:///etc/passwd'), false);
    assert.equal(win.webContents.getURL(), ui);
    assert.equal(win.webContents.navigate(`${new URL(ui).origin}/#/findings`), true, 'the UI may move within its origin');
    assert.deepEqual(win.webContents.windowOpenHandler!({ url: 'https://docs.example/x' }), { action: 'deny' });
    assert.deepEqual(win.webContents.windowOpenHandler!({ url: 'javascript:alert(1)' }), { action: 'deny' });
    assert.deepEqual(win.webContents.windowOpenHandler!({ url: 'file:///etc/passwd' }), { action: 'deny' });
    assert.deepEqual(opened, ['https://docs.example/x']);
    assert.equal(permissions.check!(win.webContents, 'clipboard-sanitized-write'), true);
    for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read']) assert.equal(permissions.check!(win.webContents, p), false, p);
    // a page from another origin cannot call main
    const evil = new StandInWindow('https://evil.example/');
    await assert.rejects(invokeAs(evil.webContents, evil.webContents.frame, 'gateway:restart', null), /untrusted sender/);
  });

  it('on quit, stops the gateway (control.json gone, process ended) before the app goes', async () => {
    app.quit();
    assert.equal(app.quitted, false, 'the first quit waits for the gateway');
    await waitFor('the app to quit', () => app.quitted);
    assert.equal(app.quitCalls, 2);
    assert.equal(fs.existsSync(path.join(dataDir, 'control.json')), false);
    assert.throws(() => process.kill(gatewayPid!, 0), /ESRCH/, 'the gateway process is gone');
    gatewayPid = null;
  });
});
