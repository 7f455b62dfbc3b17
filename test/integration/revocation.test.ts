/**
 * Revoking a token ends the live sessions it opened, within a second: `flightlog identity revoke`
 * (the real CLI, which tells a running gateway), a revoke the gateway only sees in the store
 * (its poll), and a run ending (its token is
 * revoked through the control API, as `flightlog run` does when the agent exits). Real psql and
 * node-postgres, OpenSSH's ssh (a shell and a multiplexed connection), and curl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { listEvents } from '../../gateway/store/queries';
import type { RunStartResult, SessionSummary } from '../../gateway/common/api-types';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../../bin/flightlog.js');
const ALL = ['rv-pg', 'rv-psql', 'rv-ssh', 'rv-http', 'rv-run', 'rv-http-next', 'rv-http-quiet'];

/** Resolves with what `fn` waited for, or rejects after `ms`. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

async function startTicker(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/once') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    const t = setInterval(() => res.write(`data: {"i":${++i}}\n\n`), 50);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('revocation ends live sessions', { timeout: 120_000 }, () => {
  let pg: PostgresServer;
  let sshd: Sshd;
  /** an endless event stream (until the client goes), as a model API's streaming answer */
  let upstream: { url: string; close(): Promise<void> };
  let gw: TestGateway;
  let work: string;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-revoke-'));
    [pg, sshd, upstream] = await Promise.all([startPostgres(), startSshd(), startTicker()]);
    gw = await startTestGateway({
      env: { APP_PW: pg.app.password },
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ALL },
        { name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ALL },
        { name: 'api', protocol: 'http', upstream: { url: upstream.url }, identities: ALL },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([pg?.stop(), sshd?.stop(), upstream?.close()]);
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** `flightlog identity revoke NAME` on the gateway's data dir, as a user runs it. */
  async function cliRevoke(name: string): Promise<void> {
    const { stderr } = await exec(process.execPath, [CLI, 'identity', 'revoke', name, '--data-dir', gw.dataDir]);
    assert.match(stderr, new RegExp(`revoked ${name}`));
  }

  async function sessionsOf(identity: string, connection: string): Promise<SessionSummary[]> {
    await gw.flush();
    return gw.sessions().filter((s) => s.identity === identity && s.connection === connection);
  }

  function assertEnded(s: SessionSummary, reason: string): void {
    const detail = gw.show(s.id);
    assert.equal(detail.status, 'closed');
    assert.equal(detail.endReason, reason);
    const events = listEvents(gw.gateway.db, s.id).events;
    const t = events.find((e) => e.kind === 'terminated');
    assert.ok(t, 'a terminated event is in the chain');
    assert.equal(t.direction, 'gateway');
    assert.equal((t.data as { reason: string }).reason, reason);
  }

  it('postgres (node-postgres): FATAL 57P01 "Flightlog token revoked" within a second of a revoke written to the store by another process', async () => {
    const token = gw.addIdentity('rv-pg');
    const a = gw.address('db');
    const c = new Client({ host: a.host, port: a.port, user: 'rv-pg', password: token, database: 'app' });
    const errored = new Promise<{ code?: string; message: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    // straight into the store, as a CLI that cannot reach the control API does: the gateway's poll notices
    gw.revokeIdentity('rv-pg');
    const t0 = Date.now();
    const err = await within(1000, 'the connection was not terminated', errored);
    assert.ok(Date.now() - t0 <= 1000);
    assert.equal(err.code, '57P01');
    assert.equal(err.message, 'terminating connection: Flightlog token revoked');
    await assert.rejects(c.query('select 2'));
    const [s] = await sessionsOf('rv-pg', 'db');
    assertEnded(s, 'revoked');
  });

  it('postgres (psql): the next statement after the revoke is not run', async () => {
    const token = gw.addIdentity('rv-psql');
    const a = gw.address('db');
    const psql = spawn('psql', ['-X', '-h', a.host, '-p', String(a.port), '-U', 'rv-psql', '-d', 'app'], {
      env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    psql.stdout.on('data', (d: Buffer) => (out += d.toString()));
    psql.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => psql.on('close', () => resolve()));
    try {
      psql.stdin.write("select 'before' || 'revoke';\n");
      await within(10_000, 'psql did not answer', (async () => { while (!out.includes('beforerevoke')) await new Promise((r) => setTimeout(r, 20)); })());
      await cliRevoke('rv-psql');
      // the gateway ends the session on its own; wait for it in the store
      await within(1000, 'the session was not ended', (async () => {
        for (;;) {
          const [s] = await sessionsOf('rv-psql', 'db');
          if (s && s.status !== 'live') return;
          await new Promise((r) => setTimeout(r, 20));
        }
      })());
      psql.stdin.write("select 'after' || 'revoke';\n");
      psql.stdin.end();
      await within(10_000, 'psql did not exit', exited);
      assert.match(err, /terminating connection: Flightlog token revoked/);
      assert.ok(!out.includes('afterrevoke'));
    } finally {
      psql.kill();
    }
    const [s] = await sessionsOf('rv-psql', 'db');
    assertEnded(s, 'revoked');
  });

  it('ssh: an open shell is told on stderr and closed, and the connection takes no new exec channel', async () => {
    gw.addIdentity('rv-ssh');
    const key = path.join(work, 'rv-ssh');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    gw.addKey('rv-ssh', `${key}.pub`);
    const a = gw.address('web');
    const sock = path.join(work, 'mux');
    const base = [...clientOptions(a.port, { keyPath: key }), '-S', sock, '-p', String(a.port), `rv-ssh@${a.host}`];
    const master = await run('ssh', ['-M', '-f', '-N', '-o', 'ControlPersist=30', ...base]);
    assert.equal(master.code, 0, master.stderr);
    const marker = path.join(work, 'after-revoke');
    try {
      assert.equal((await run('ssh', [...base, 'echo mux-ok'])).stdout.trim(), 'mux-ok');
      const shell = spawn('ssh', ['-tt', ...clientOptions(a.port, { keyPath: key }), '-p', String(a.port), `rv-ssh@${a.host}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      shell.stdout.on('data', (d: Buffer) => (out += d.toString()));
      shell.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((resolve) => shell.on('close', () => resolve()));
      shell.stdin.write('echo shell-$((40+2))\n');
      await within(10_000, 'the shell did not answer', (async () => { while (!out.includes('shell-42')) await new Promise((r) => setTimeout(r, 20)); })());
      await cliRevoke('rv-ssh');
      const t0 = Date.now();
      await within(1500, 'the shell was not closed', exited);
      assert.ok(Date.now() - t0 <= 1500);
      assert.match(out, /flightlog: Flightlog token revoked; connection closed/);
      const again = await run('ssh', [...base, `touch ${marker}`]);
      assert.notEqual(again.code, 0);
      assert.equal(fs.existsSync(marker), false, 'an exec ran after the revoke');
    } finally {
      await run('ssh', ['-O', 'exit', ...base]);
    }
    // both connections (the multiplexed one and the shell's) were live at the revoke
    const list = await sessionsOf('rv-ssh', 'web');
    assert.equal(list.length, 2);
    for (const s of list) assertEnded(s, 'revoked');
  });

  it('http: a streaming response is cut and the keep-alive connection closed', async () => {
    const token = gw.addIdentity('rv-http');
    const h = gw.address('api');
    // an idle keep-alive connection, after one answered request
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const idle = await new Promise<Socket>((resolve, reject) => {
      const req = http.get({ host: h.host, port: h.port, path: '/once', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(req.socket as Socket));
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('no answer')));
    });
    const idleClosed = new Promise<void>((resolve) => (idle.destroyed ? resolve() : idle.once('close', () => resolve())));
    const curl = spawn('curl', ['-sN', '-H', `Authorization: Bearer ${token}`, `http://${h.host}:${h.port}/ticks`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => curl.on('close', (code) => resolve(code)));
    try {
      await within(10_000, 'no event arrived', (async () => { while (!out.includes('"i":2')) await new Promise((r) => setTimeout(r, 20)); })());
      await cliRevoke('rv-http');
      const code = await within(1000, 'the stream was not cut', exited);
      assert.notEqual(code, 0, 'curl saw a clean end of a cut stream');
      await within(1000, 'the keep-alive connection was not closed', idleClosed);
    } finally {
      curl.kill();
      agent.destroy();
    }
    const list = await sessionsOf('rv-http', 'api');
    assert.equal(list.length, 2);
    for (const s of list) assertEnded(s, 'revoked');
  });

  it('http: the very next request after a revoke by another process is refused, told or not', async () => {
    const h = gw.address('api');
    const get = (token: string) =>
      new Promise<number>((resolve, reject) => {
        // a new connection each time: nothing the gateway learnt on an earlier one may let it through
        const req = http.get({ host: h.host, port: h.port, path: '/once', agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
    // the CLI, which also tells the running gateway
    const told = gw.addIdentity('rv-http-next');
    assert.equal(await get(told), 200);
    await cliRevoke('rv-http-next');
    assert.equal(await get(told), 401);
    // another process writing the revoke straight into the store, the gateway not told
    const silent = gw.addIdentity('rv-http-quiet');
    assert.equal(await get(silent), 200);
    const store = path.resolve(__dirname, '../../gateway/store');
    execFileSync(process.execPath, [
      '-e',
      `const { openDb } = require(${JSON.stringify(path.join(store, 'db.js'))}); const { revokeIdentity } = require(${JSON.stringify(path.join(store, 'identities.js'))}); const db = openDb(process.argv[1]); revokeIdentity(db, 'rv-http-quiet'); db.close();`,
      gw.dataDir,
    ]);
    assert.equal(await get(silent), 401);
  });

  it('a run ending ends its sessions at once ("run ended"), and the identity keeps working', async () => {
    const identityToken = gw.addIdentity('rv-run');
    const ctl = gw.gateway.control;
    const call = async (route: string, body: unknown) => {
      const res = await fetch(ctl.url + route, { method: 'POST', headers: { authorization: `Bearer ${ctl.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(res.ok, `${route}: ${res.status}`);
      return res.json() as Promise<unknown>;
    };
    const started = (await call('/api/runs', { identity: 'rv-run', argv: ['agent'], pid: process.pid })) as RunStartResult;
    const a = gw.address('db');
    const c = new Client({ host: a.host, port: a.port, user: 'rv-run', password: started.token, database: 'app' });
    const errored = new Promise<{ code?: string; message: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    await c.query('select 1');
    const other = new Client({ host: a.host, port: a.port, user: 'rv-run', password: identityToken, database: 'app' });
    await other.connect();
    await call(`/api/runs/${encodeURIComponent(started.runId)}/end`, { exitCode: 0 });
    const err = await within(1000, 'the run session was not terminated', errored);
    assert.equal(err.code, '57P01');
    assert.match(err.message, /Flightlog run ended/);
    assert.equal((await other.query('select 7 as n')).rows[0].n, 7, 'a session outside the run goes on');
    await other.end();
    const s = (await sessionsOf('rv-run', 'db')).find((x) => x.run === started.runId);
    assert.ok(s);
    assertEnded(s, 'run ended');
  });
});
