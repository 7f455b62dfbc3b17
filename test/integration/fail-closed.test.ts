/**
 * Fail-closed recording against a real full disk: the gateway's data dir on a small tmpfs that
 * the test fills. A command must reach the upstream only once its record is committed, so when
 * the store cannot write, the statement / exec / request that hits the failure is refused with
 * the protocol's error and never runs: proven on the real PostgreSQL, sshd and HTTP upstream.
 * Needs root (mount); skipped with the reason otherwise.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { openDb } from '../../gateway/store/db';
import type { GatewayStatus } from '../../gateway/common/api-types';

const REFUSED = 'Flightlog: recording failed, command not forwarded';
/** statement padding: each recorded command is large, so the store's WAL must grow soon */
const PAD = 'x'.repeat(48 * 1024);

/** A tmpfs of `sizeMb` at a fresh temp dir; null when this process may not mount. */
function mountTmpfs(sizeMb: number): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // lazy unmount: a straggling file handle must not leave the mount behind
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {
      // nothing mounted
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes a filler file until the file system has no byte left; returns its path. */
function fillDisk(dir: string): string {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1024 * 1024, 4096, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

async function controlStatus(gw: TestGateway): Promise<GatewayStatus> {
  const res = await fetch(`${gw.gateway.control.url}/api/status`, { headers: { authorization: `Bearer ${gw.gateway.control.token}` } });
  return (await res.json()) as GatewayStatus;
}

const canMount = (() => {
  const dir = mountTmpfs(1);
  if (!dir) return false;
  unmount(dir);
  return true;
})();

describe('fail-closed on a full disk', { timeout: 240_000, skip: canMount ? false : 'needs root to mount a tmpfs for the data dir' }, () => {
  let pg: PostgresServer;
  let sshd: Sshd;
  let upstream: HttpUpstream;
  let remote: string;
  const mounts: string[] = [];
  const gateways: TestGateway[] = [];

  before(async () => {
    remote = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-failclosed-remote-'));
    [pg, sshd, upstream] = await Promise.all([startPostgres(), startSshd(), startHttpUpstream()]);
    pg.psql('CREATE TABLE fc (id int primary key, pad text); ALTER TABLE fc OWNER TO app;', 'app');
  });

  after(async () => {
    for (const g of gateways) await g.close().catch(() => undefined);
    for (const m of mounts) unmount(m);
    await Promise.all([pg?.stop(), sshd?.stop(), upstream?.close()]);
    fs.rmSync(remote, { recursive: true, force: true });
  });

  async function gatewayOnTmpfs(): Promise<{ gw: TestGateway; dataDir: string; mount: string }> {
    const mount = mountTmpfs(16);
    assert.ok(mount, 'tmpfs mount failed');
    mounts.push(mount);
    const dataDir = path.join(mount, 'data');
    const gw = await startTestGateway({
      dataDir,
      env: { APP_PW: pg.app.password },
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] },
        { name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] },
        { name: 'api', protocol: 'http', upstream: { url: upstream.url }, identities: ['claude'] },
      ],
    });
    gateways.push(gw);
    return { gw, dataDir, mount };
  }

  /** What the store holds once space is back: the command texts recorded on a connection. */
  function recordedCommands(dataDir: string, connection: string): string[] {
    const db = openDb(dataDir);
    try {
      return (db.prepare('SELECT c.text FROM commands c JOIN sessions s ON s.id = c.session_id WHERE s.connection = ? ORDER BY c.id').all(connection) as { text: string }[]).map((r) => r.text);
    } finally {
      db.close();
    }
  }

  it('postgres: the statement whose record fails is refused with 58030 and never reaches the database; HTTP gets 503', async () => {
    const { gw, dataDir, mount } = await gatewayOnTmpfs();
    const token = gw.addIdentity('claude');
    const a = gw.address('db');
    const c = new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
    c.on('error', () => undefined);
    await c.connect();
    await c.query('select 1');
    await gw.flush();
    const filler = fillDisk(mount);

    let acknowledged = 0;
    let refusal: { code?: string; message: string } | null = null;
    for (let i = 1; i <= 2000 && !refusal; i++) {
      try {
        await c.query(`insert into fc values (${i}, '${PAD}')`);
        acknowledged = i;
      } catch (err) {
        refusal = err as { code?: string; message: string };
      }
    }
    assert.ok(refusal, 'the disk never filled up');
    assert.equal(refusal.code, '58030');
    assert.equal(refusal.message, REFUSED);
    // the real database has exactly the acknowledged rows: the refused statement did not land
    assert.equal(pg.psql('select count(*), coalesce(max(id), 0) from fc', 'app').trim(), `${acknowledged}|${acknowledged}`);

    // pipelined extended protocol after the failure: refused in order, the connection stays usable
    await assert.rejects(c.query({ text: 'insert into fc values ($1, $2)', values: [acknowledged + 1, 'x'] }), (e: { code?: string }) => e.code === '58030');
    await assert.rejects(c.query('select 1'), (e: { code?: string }) => e.code === '58030');
    assert.equal(pg.psql('select count(*) from fc', 'app').trim(), String(acknowledged));
    await c.end();

    // a new HTTP connection: 503 JSON, and the upstream saw nothing
    const seenBefore = upstream.seen.length;
    const h = gw.address('api');
    const res = await run('curl', ['-s', '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}', `http://${h.host}:${h.port}/echo`]);
    const [body, status] = res.stdout.trim().split('\n');
    assert.equal(status, '503');
    assert.equal((JSON.parse(body) as { error: { code: string; message: string } }).error.message, REFUSED);
    assert.equal(upstream.seen.length, seenBefore);

    // told once on stderr, and the control API reports it
    assert.equal(gw.logs.filter((l) => /recording store failed/.test(l)).length, 1, gw.logs.join('\n'));
    const st = await controlStatus(gw);
    assert.equal(st.store?.ok, false);
    assert.match(st.store?.error ?? '', /full|disk|I\/O/i);

    // space back, gateway stopped: every acknowledged statement is in the store
    fs.rmSync(filler);
    await gw.close();
    const texts = recordedCommands(dataDir, 'db').filter((t) => t.startsWith('insert into fc'));
    for (let i = 1; i <= acknowledged; i++) assert.ok(texts.some((t) => t.startsWith(`insert into fc values (${i},`)), `statement ${i} was acknowledged but not recorded`);
  });

  it('ssh: the exec whose record fails is refused on stderr with exit status 1 and never runs', async () => {
    const { gw, dataDir, mount } = await gatewayOnTmpfs();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-failclosed-ssh-'));
    let masterExit = (): void => undefined;
    try {
      const key = path.join(work, 'agent');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      gw.addIdentity('claude');
      gw.addKey('claude', `${key}.pub`);
      const a = gw.address('web');
      // one SSH connection (ControlMaster), opened before the disk fills: each exec is a new
      // channel on it, so the first write that fails is an exec's own record
      const sock = path.join(work, 'mux');
      const base = [...clientOptions(a.port, { keyPath: key }), '-S', sock, '-p', String(a.port), `claude@${a.host}`];
      const master = await run('ssh', ['-M', '-f', '-N', '-o', 'ControlPersist=60', ...base]);
      assert.equal(master.code, 0, master.stderr);
      masterExit = () => void run('ssh', ['-O', 'exit', ...base]);
      const ssh = (cmd: string) => run('ssh', [...base, cmd]);
      assert.equal((await ssh('echo ready')).stdout.trim(), 'ready');
      await gw.flush();
      fillDisk(mount);

      let ran = 0;
      let refused: { code: number | null; stderr: string } | null = null;
      for (let i = 1; i <= 500 && !refused; i++) {
        // an SSH packet carries at most ~32 KB: a smaller pad
        const r = await ssh(`touch ${remote}/m${i} # ${PAD.slice(0, 16 * 1024)}`);
        if (r.code === 0) ran = i;
        else refused = r;
      }
      assert.ok(refused, 'the disk never filled up');
      assert.equal(refused.code, 1, refused.stderr + gw.logs.join("\n"));
      assert.match(refused.stderr, /Flightlog: recording failed, command not forwarded/);
      // sshd ran exactly the acknowledged execs
      assert.equal(fs.existsSync(path.join(remote, `m${ran + 1}`)), false, 'the refused exec ran on the host');
      for (let i = 1; i <= ran; i++) assert.ok(fs.existsSync(path.join(remote, `m${i}`)));
      assert.equal(gw.logs.filter((l) => /recording store failed/.test(l)).length, 1);
      // space back, gateway stopped: every exec that ran is in the store
      fs.rmSync(path.join(mount, 'filler'));
      await gw.close();
      const texts = recordedCommands(dataDir, 'web');
      for (let i = 1; i <= ran; i++) assert.ok(texts.some((t) => t.startsWith(`touch ${remote}/m${i} #`)), `exec ${i} ran but was not recorded`);
    } finally {
      masterExit();
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
  it('ssh shell: the typed line whose record fails is not sent to the shell; the session is stopped with a message', async () => {
    const { gw, mount } = await gatewayOnTmpfs();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-failclosed-shell-'));
    try {
      const key = path.join(work, 'agent');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      gw.addIdentity('claude');
      gw.addKey('claude', `${key}.pub`);
      const a = gw.address('web');
      const shell = spawn('ssh', ['-T', ...clientOptions(a.port, { keyPath: key }), '-p', String(a.port), `claude@${a.host}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      shell.stdout.on('data', (d: Buffer) => (out += d.toString()));
      shell.stderr.on('data', (d: Buffer) => (err += d.toString()));
      shell.stdin.on('error', () => undefined);
      let exited = false;
      const closed = new Promise<void>((resolve) => shell.on('close', () => { exited = true; resolve(); }));
      const until = async (cond: () => boolean): Promise<void> => {
        for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
      };
      try {
        shell.stdin.write('echo ready\n');
        await until(() => out.includes('ready'));
        assert.match(out, /ready/);
        await gw.flush();
        fillDisk(mount);
        let ran = 0;
        for (let i = 1; i <= 500 && !exited; i++) {
          shell.stdin.write(`touch ${remote}/s${i}; echo ok-${i} # ${PAD.slice(0, 16 * 1024)}\n`);
          await until(() => out.includes(`ok-${i}\n`) || exited);
          if (out.includes(`ok-${i}\n`)) ran = i;
        }
        await closed;
        assert.match(err, /Flightlog: recording failed, command not forwarded/);
        assert.equal(fs.existsSync(path.join(remote, `s${ran + 1}`)), false, 'the refused line ran in the shell');
        for (let i = 1; i <= ran; i++) assert.ok(fs.existsSync(path.join(remote, `s${i}`)));
      } finally {
        shell.kill();
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
