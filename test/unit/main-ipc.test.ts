/**
 * Electron main's IPC without Electron: every invoke channel's handler, its sender check, and the
 * preload bridge, driven through test/helpers/electron-stand-in.ts (a stand-in for the `electron`
 * module, since no Electron binary can be fetched here).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exposed, invokeAs, registeredChannels, rendererListeners, sendToRenderer, speakAs, StandInWindow } from '../helpers/electron-stand-in';
import type { FlightlogBridge, GatewayState } from '../../main/bridge-types';
import type { IpcDeps } from '../../main/ipc';

// loaded after the stand-in is in place
const { INVOKE_CHANNELS, registerIpc } = require('../../main/ipc') as typeof import('../../main/ipc');

const UI = 'http://127.0.0.1:7001';

describe('main IPC handlers (electron stand-in)', () => {
  const calls: string[] = [];
  const notes: Array<[string, string]> = [];
  let live: number[] = [];
  let state: GatewayState = { state: 'ready', url: `${UI}/#token=t`, liveSessions: 0 };
  const deps: IpcDeps = {
    trustedOrigins: new Set([UI]),
    gateway: {
      get state() {
        return state;
      },
      restart: async () => {
        calls.push('restart');
        state = { state: 'starting' };
      },
      setLiveSessions: (n) => calls.push(`setLiveSessions ${n}`),
    },
    openBundleDialog: async () => {
      calls.push('openBundleDialog');
      return { path: '/tmp/x.flightlog' };
    },
    notify: (title, body) => {
      notes.push([title, body]);
      return true;
    },
    onLiveCount: (n) => live.push(n),
  };
  let unregister: () => void;
  let win: StandInWindow;

  before(() => {
    unregister = registerIpc(deps);
    win = new StandInWindow(`${UI}/#/sessions`);
    speakAs(win.webContents);
  });
  after(() => unregister());

  it('registers exactly the channels bridge-types.ts declares', () => {
    assert.deepEqual(registeredChannels(), Object.keys(INVOKE_CHANNELS).sort());
    assert.deepEqual(registeredChannels(), ['bundle:open-dialog', 'gateway:restart', 'gateway:state', 'notify', 'recording:live-count']);
  });

  it('refuses a sender that is not one of our windows, a subframe, or an untrusted origin, before doing anything', async () => {
    const stranger = { id: 999, frame: { url: `${UI}/`, parent: null } };
    const sub = { url: `${UI}/`, parent: win.webContents.frame };
    const evil = new StandInWindow('https://evil.example/');
    const file = new StandInWindow('file:///etc/passwd');
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['unknown window', () => invokeAs(stranger, stranger.frame, 'gateway:restart', null)],
      ['subframe', () => invokeAs(win.webContents, sub, 'gateway:restart', null)],
      ['no frame', () => invokeAs(win.webContents, null, 'gateway:restart', null)],
      ['untrusted origin', () => invokeAs(evil.webContents, evil.webContents.frame, 'gateway:restart', null)],
      ['file: url', () => invokeAs(file.webContents, file.webContents.frame, 'bundle:open-dialog', null)],
      ['same host, other port', () => invokeAs(win.webContents, { url: 'http://127.0.0.1:7002/', parent: null }, 'notify', { title: 'a', body: 'b' })],
    ];
    for (const [name, call] of cases) await assert.rejects(call(), /untrusted sender/, name);
    assert.deepEqual(calls, [], 'no refused call reached the gateway or a dialog');
    assert.deepEqual(notes, []);
    evil.destroy();
    file.destroy();
  });

  it('each channel through the preload bridge: state, restart, open dialog, notify, live count', async () => {
    require('../../main/preload');
    const bridge = exposed.get('flightlog') as FlightlogBridge;
    assert.deepEqual(Object.keys(bridge).sort(), ['gatewayState', 'notify', 'onBundleOpened', 'onGatewayState', 'openBundleDialog', 'platform', 'restartGateway', 'setLiveCount']);
    assert.ok(!('ipcRenderer' in bridge) && !('invoke' in bridge), 'the preload never hands out ipcRenderer');

    assert.deepEqual(await bridge.gatewayState(), state);
    assert.deepEqual(await bridge.restartGateway(), { state: 'starting' });
    assert.deepEqual(await bridge.openBundleDialog(), { path: '/tmp/x.flightlog' });
    assert.deepEqual(calls.splice(0), ['restart', 'openBundleDialog']);

    assert.equal(await bridge.notify('t'.repeat(500), 'b'.repeat(5000)), true);
    assert.deepEqual(notes.splice(0).map(([t, b]) => [t.length, b.length]), [[200, 1000]]);

    // 0 → 2 live sessions notifies once; 2 → 3 does not; junk counts as 0
    assert.equal(await bridge.setLiveCount(2.7), null);
    await bridge.setLiveCount(3);
    await bridge.setLiveCount(-5);
    assert.deepEqual(notes.splice(0), [['Flightlog is recording', '2 live sessions']]);
    assert.deepEqual(live.splice(0), [2, 3, 0]);
    assert.deepEqual(calls.splice(0), ['setLiveSessions 2', 'setLiveSessions 3', 'setLiveSessions 0']);
  });

  it('the main handlers coerce what a renderer sends whatever the preload did', async () => {
    const frame = win.webContents.frame;
    assert.equal(await invokeAs(win.webContents, frame, 'notify', { title: { toString: () => 'x' }, body: 42 }), true);
    assert.deepEqual(notes.splice(0), [['x', '42']]);
    assert.equal(await invokeAs(win.webContents, frame, 'notify', null), true);
    assert.deepEqual(notes.splice(0), [['undefined', 'undefined']]);
    await invokeAs(win.webContents, frame, 'recording:live-count', { liveSessions: 'NaN' });
    await invokeAs(win.webContents, frame, 'recording:live-count', null);
    assert.deepEqual(live.splice(0), [0, 0]);
    calls.splice(0);
  });

  it('events reach the renderer as the payload alone, and unsubscribe removes the listener', () => {
    const bridge = exposed.get('flightlog') as FlightlogBridge;
    const got: unknown[] = [];
    const off = bridge.onGatewayState((s) => got.push(s));
    const offBundle = bridge.onBundleOpened((b) => got.push(b));
    sendToRenderer('gateway:state', { state: 'down', reason: 'exited (1)', restartInMs: 1000 });
    sendToRenderer('bundle:opened', { path: '/b.flightlog' });
    assert.deepEqual(got, [{ state: 'down', reason: 'exited (1)', restartInMs: 1000 }, { path: '/b.flightlog' }]);
    off();
    offBundle();
    assert.equal(rendererListeners('gateway:state'), 0);
    assert.equal(rendererListeners('bundle:opened'), 0);
    sendToRenderer('gateway:state', { state: 'starting' });
    assert.equal(got.length, 2);
  });

  it('unregistering removes every handler', () => {
    unregister();
    assert.deepEqual(registeredChannels(), []);
    unregister = registerIpc(deps);
    live = [];
  });
});
