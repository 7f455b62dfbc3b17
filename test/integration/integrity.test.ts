import { captureCli, type CliResult } from '../helpers/cli';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDb } from '../../gateway/store/db';
import { addIdentity } from '../../gateway/store/identities';
import { getSession, listSessions } from '../../gateway/store/queries';
import type { SessionDetail } from '../../gateway/common/api-types';
import type { StoreIntegrity } from '../../gateway/store/integrity';
import { startHttpUpstream } from '../helpers/http-upstreams';
import { startTestGateway } from '../helpers/gateway';
import { listTombstones } from '../../gateway/store/integrity';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'flightlog.js');

interface GatewayProcess {
  child: ChildProcess;
  stderr: () => string;
  /** host:port of the http listener */
  listen: { host: string; port: number };
  exited: Promise<void>;
}

/** Starts `flightlog gateway` as its own process and waits for "ready". */
async function startGatewayProcess(config: string, dataDir: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--config', config, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLIGHTLOG_DEBUG: '' } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^ready$/m.test(out)) resolve();
    });
    void exited.then(() => reject(new Error(`the gateway exited before it was ready: ${err}`)));
  });
  const m = /^listening {2}api \(http\) ([\d.]+):(\d+)$/m.exec(out);
  assert.ok(m, out);
  return { child, stderr: () => err, listen: { host: m[1], port: Number(m[2]) }, exited };
}

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Reads the store with a connection of the test's own (the gateway process writes it). */
function readStore<T>(dataDir: string, fn: (db: ReturnType<typeof openDb>) => T): T {
  const db = openDb(dataDir);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const cli = (argv: string[]): Promise<CliResult> => captureCli(argv);

test('a gateway killed with SIGKILL leaves no session live forever: the restart closes it as crashed, sealed, and the app shows a real seal check', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-integrity-'));
  const upstream = await startHttpUpstream();
  let gw: GatewayProcess | null = null;
  const socket = new net.Socket();
  try {
    const token = readStore(dataDir, (db) => addIdentity(db, 'agent', 'agent'));
    const config = path.join(dataDir, 'flightlog.yaml');
    fs.writeFileSync(config, `connections:\n  - name: api\n    protocol: http\n    listen: 127.0.0.1:0\n    upstream: { url: "${upstream.url}" }\n    identities: [agent]\n`);
    gw = await startGatewayProcess(config, dataDir);

    // one client connection (one session): a finished exchange, then one left waiting on the upstream
    await new Promise<void>((resolve, reject) => socket.connect(gw!.listen.port, gw!.listen.host, resolve).once('error', reject));
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => undefined);
    const request = (p: string) => socket.write(`GET ${p} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    request('/small');
    await waitFor('the first response', () => /"ok":true/.test(received));
    request('/slow?ms=600000');
    const sessionId = await waitFor('the exchanges to be committed', () =>
      readStore(dataDir, (db) => {
        const s = listSessions(db).sessions[0];
        if (!s || s.status !== 'live') return null;
        const d = getSession(db, s.id);
        return d.commands.length === 2 && d.commands[0].status === 'ok' && d.commands[1].status === 'running' ? s.id : null;
      }),
    );

    gw.child.kill('SIGKILL');
    await gw.exited;
    assert.equal(readStore(dataDir, (db) => getSession(db, sessionId).status), 'live', 'the crash left the session live');

    gw = await startGatewayProcess(config, dataDir);
    assert.match(gw.stderr(), /^flightlog warn: closed 1 session left open by a crash$/m);
    const closed = readStore(dataDir, (db) => getSession(db, sessionId));
    assert.equal(closed.status, 'error');
    assert.equal(closed.endReason, 'crashed');
    assert.ok(closed.seal, 'sealed over what was committed');
    assert.deepEqual(
      closed.commands.map((c) => [c.text, c.status]),
      [
        ['GET /small', 'ok'],
        ['GET /slow?ms=600000', 'cancelled'],
      ],
    );

    const v = await cli(['verify', '--json', '--data-dir', dataDir]);
    assert.equal(v.code, 0, v.stdout);
    const report = JSON.parse(v.stdout) as StoreIntegrity;
    assert.equal(report.sessions.find((s) => s.session === sessionId)?.state, 'verified');

    // the app's badge: the control API checks the session when it is shown
    const control = JSON.parse(fs.readFileSync(path.join(dataDir, 'control.json'), 'utf8')) as { url: string };
    const controlToken = fs.readFileSync(path.join(dataDir, 'control-token'), 'utf8').trim();
    const show = async (): Promise<SessionDetail> => (await (await fetch(`${control.url}/api/sessions/${sessionId}`, { headers: { authorization: `Bearer ${controlToken}` } })).json()) as SessionDetail;
    let shown = await show();
    assert.equal(shown.sealed, true);
    assert.equal(shown.integrity?.state, 'verified');

    // delete the whole first HTTP exchange behind the gateway's back
    const small = closed.commands[0].id;
    readStore(dataDir, (db) => db.prepare('DELETE FROM commands WHERE id = ?').run(small));
    shown = await show();
    assert.equal(shown.sealed, false, 'the badge no longer says sealed');
    assert.equal(shown.integrity?.state, 'bad');
    assert.match(shown.integrity?.message ?? '', new RegExp(`command ${small} \\(commands\\): is missing: the chain recorded it at event \\d+ \\(deleted\\)`));
    const bad = await cli(['verify', '--data-dir', dataDir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, new RegExp(`^not verified: session ${sessionId}: command ${small} \\(commands\\): is missing`, 'm'));
  } finally {
    socket.destroy();
    if (gw && gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await upstream.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the running gateway applies retention with its own config and logs what it removed', async () => {
  const upstream = await startHttpUpstream();
  const gw = await startTestGateway({ connections: [{ name: 'api', protocol: 'http', upstream: { url: upstream.url }, identities: ['agent'], retention: '1h' }] });
  try {
    const old = gw.gateway.recorder.openSession({ connection: 'api', protocol: 'http', identity: 'agent' });
    old.startCommand({ kind: 'http', text: 'GET /old' }).finish({ status: 'ok' });
    old.close('closed', 'done');
    const recent = gw.gateway.recorder.openSession({ connection: 'api', protocol: 'http', identity: 'agent' });
    recent.close('closed', 'done');
    await gw.flush();
    gw.gateway.db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ?').run(new Date(Date.now() - 2 * 3600_000).toISOString(), old.id);
    const r = gw.gateway.runRetention();
    assert.deepEqual(r?.removed.map((s) => s.sessionId), [old.id]);
    assert.ok(gw.logs.includes('info: retention: removed 1 session (3 events); signed tombstones kept'), gw.logs.join('\n'));
    assert.deepEqual(gw.sessions().map((s) => s.id), [recent.id]);
    assert.deepEqual(listTombstones(gw.gateway.db).map((t) => [t.sessionId, t.reason]), [[old.id, 'retention']]);
  } finally {
    await gw.close();
    await upstream.close();
  }
});
