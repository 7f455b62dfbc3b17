/**
 * The desktop shell's gateway lifecycle (main/gateway-process.ts) without Electron: the REAL
 * gateway (bin/flightlog.js) run by plain Node as Electron would run it, ready when its
 * control.json names its pid (stdout is never read), restarted with backoff after a crash,
 * "down" with the gateway's own reason when it cannot start, and stopped cleanly.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { downPage, GatewayProcess, readyUrl, type GatewayProcessOptions } from '../../main/gateway-process';
import type { GatewayState } from '../../main/bridge-types';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { reapAtExit, tempDir } from '../helpers/tmp';

const CLI = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

describe('main: the gateway child process (real gateway, no Electron)', { timeout: 120_000 }, () => {
  const running: GatewayProcess[] = [];
  const make = (opts: Partial<GatewayProcessOptions> = {}) => {
    const dataDir = opts.dataDir ?? tempDir('flightlog-main-');
    const gp = new GatewayProcess({ cli: CLI, execPath: process.execPath, dataDir, env: { ...process.env, FLIGHTLOG_HOME: '' }, ...opts });
    running.push(gp);
    // a failed assertion must not leave a gateway behind
    const unreap = reapAtExit(() => {
      if (gp.pid) process.kill(gp.pid, 'SIGKILL');
    });
    return { gp, dataDir, unreap };
  };
  /** Resolves with the first state (from now on) that matches. */
  const until = (gp: GatewayProcess, match: (s: GatewayState) => boolean, ms = 30_000): Promise<GatewayState> =>
    new Promise((resolve, reject) => {
      if (match(gp.state)) return resolve(gp.state);
      const t = setTimeout(() => reject(new Error(`state never matched; last ${JSON.stringify(gp.state)}`)), ms);
      const on = (s: GatewayState) => {
        if (!match(s)) return;
        clearTimeout(t);
        gp.off('state', on);
        resolve(s);
      };
      gp.on('state', on);
    });

  after(async () => {
    await Promise.all(running.map((g) => g.stop()));
  });

  it('is ready once control.json names its pid, never on a stale file; the URL serves the UI with its token', async () => {
    const { gp, dataDir, unreap } = make();
    // a dead gateway's leftover must not count as ready
    fs.writeFileSync(path.join(dataDir, 'control.json'), JSON.stringify({ url: 'http://127.0.0.1:9', pid: 2 ** 22 + 1 }) + '\n');
    const seen: GatewayState[] = [];
    gp.on('state', (s: GatewayState) => seen.push(s));
    gp.start();
    const ready = await until(gp, (s) => s.state === 'ready');
    assert.equal(seen[0].state, 'starting');
    assert.ok(ready.state === 'ready');
    assert.doesNotMatch(ready.url, /:9\//);
    const control = JSON.parse(fs.readFileSync(path.join(dataDir, 'control.json'), 'utf8')) as { url: string; pid: number };
    assert.equal(control.pid, gp.pid);
    assert.equal(ready.url, readyUrl(dataDir, gp.pid!));
    const token = decodeURIComponent(ready.url.split('#token=')[1]);
    const res = await fetch(`${control.url}/api/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { dataDir: string }).dataDir, dataDir);
    assert.equal((await fetch(`${control.url}/`)).status, 200, 'the UI itself is served');

    await gp.stop();
    unreap();
    assert.equal(gp.pid, null);
    assert.equal(fs.existsSync(path.join(dataDir, 'control.json')), false, 'a clean stop removes control.json');
    assert.equal(gp.state.state, 'ready', 'a requested stop is not a crash: no restart, no "down"');
  });

  it('restarts after a crash, with the first backoff delay, as a new process', async () => {
    const { gp, unreap } = make({ backoffMs: [50, 100] });
    gp.start();
    await until(gp, (s) => s.state === 'ready');
    const first = gp.pid!;
    process.kill(first, 'SIGKILL');
    const down = await until(gp, (s) => s.state === 'down');
    assert.deepEqual(down, { state: 'down', reason: 'exited (SIGKILL)', restartInMs: 50 });
    const again = await until(gp, (s) => s.state === 'ready');
    assert.ok(again.state === 'ready');
    assert.notEqual(gp.pid, first);
    assert.equal(readyUrl(gp.dataDir, gp.pid!), again.url);
    await gp.restart();
    await until(gp, (s) => s.state === 'ready');
    await gp.stop();
    unreap();
  });

  it('a gateway that cannot start is "down" with its own one-line reason, then stays down after repeated crashes', async () => {
    const dir = tempDir('flightlog-main-bad-');
    const config = path.join(dir, 'flightlog.yaml');
    fs.writeFileSync(config, 'connections:\n  - name: db\n    protocol: postgres\n    upstream: { host: 127.0.0.1, port: nope }\n');
    const { gp, unreap } = make({ configFile: config, backoffMs: [20, 40], maxCrashes: 3 });
    const downs: GatewayState[] = [];
    gp.on('state', (s: GatewayState) => s.state === 'down' && downs.push(s));
    gp.start();
    const final = await until(gp, (s) => s.state === 'down' && s.restartInMs === null);
    assert.equal(downs.length, 3);
    assert.deepEqual(
      downs.map((d) => (d.state === 'down' ? d.restartInMs : -1)),
      [20, 40, null],
    );
    assert.ok(final.state === 'down');
    assert.match(final.reason, /flightlog\.yaml/, final.reason);
    assert.doesNotMatch(final.reason, /^flightlog:|\n|at .*\.js/, 'one line, without the CLI prefix or a stack');
    assert.equal(gp.pid, null);
    // a manual restart clears the count and tries again
    await gp.restart();
    await until(gp, (s) => s.state === 'down' && s.restartInMs === 20);
    await gp.stop();
    unreap();
  });

  it('a gateway that never gets ready is stopped after the ready timeout and counted as a crash', async () => {
    const dir = tempDir('flightlog-main-hang-');
    const hang = path.join(dir, 'hang.js');
    fs.writeFileSync(hang, 'setInterval(() => {}, 1000);\n');
    const { gp, unreap } = make({ cli: hang, readyTimeoutMs: 300, backoffMs: [60_000] });
    gp.start();
    const down = await until(gp, (s) => s.state === 'down');
    assert.deepEqual(down, { state: 'down', reason: 'not ready after 300 ms', restartInMs: 60_000 });
    await gp.stop();
    unreap();
  });

  it('the down page shows the reason as text under its own CSP', () => {
    const url = downPage({ state: 'down', reason: '<img src=x onerror=alert(1)> & "q"', restartInMs: 2000 });
    assert.match(url, /^data:text\/html;charset=utf-8,/);
    const html = decodeURIComponent(url.slice(url.indexOf(',') + 1));
    assert.ok(!html.includes('<img'), 'no markup from the reason');
    assert.ok(html.includes('&#60;img src=x onerror=alert(1)&#62; &#38; &#34;q&#34;'));
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    assert.match(html, /Restarting in 2 s\./);
    assert.match(decodeURIComponent(downPage({ state: 'down', reason: 'x', restartInMs: null })), /Restart gateway once the cause is fixed/);
    assert.match(decodeURIComponent(downPage({ state: 'starting' })), /Starting the gateway/);
  });
});
