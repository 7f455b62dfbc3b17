/**
 * Issue 12: the CLI lost everything past the first pipe buffer (64 KiB) when its reader was
 * slower than the process exit. These run the real `flightlog` with stdout piped into a reader
 * that only starts reading after a pause, on a store big enough to overflow several buffers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { cleanupStores, newStore } from '../helpers/bundle-fixtures';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

let dataDir = '';
let bigSession = '';

before(async () => {
  const store = newStore();
  dataDir = store.dir;
  // ~400 sessions make `sessions --json` several hundred KiB; one session with 3000 commands
  // makes `show` (plain and --json) far bigger than a pipe buffer.
  for (let i = 0; i < 400; i++) {
    const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', meta: { database: 'app' } });
    const c = s.startCommand({ kind: 'sql', text: `SELECT ${i} AS n`, classification: 'read' });
    c.finish({ status: 'ok', result: { rowCount: 1, tag: 'SELECT 1' } });
    s.close('closed', 'client quit');
  }
  const big = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', meta: { database: 'app' } });
  for (let i = 0; i < 3000; i++) {
    const c = big.startCommand({ kind: 'sql', text: `UPDATE accounts SET balance = balance + ${i} WHERE id = ${i} -- pipe test padding`, classification: 'write' });
    c.finish({ status: 'ok', result: { rowCount: 1, tag: 'UPDATE 1' } });
  }
  big.close('closed', 'client quit');
  bigSession = big.id;
  await store.rec.flush();
  store.db.close();
});

after(() => cleanupStores());

interface PipeResult {
  code: number | null;
  out: Buffer;
  stderr: string;
}

/**
 * Runs `flightlog ARGS | (sleep; cat)` in bash: a real pipe whose reader only starts reading
 * after a pause, so the CLI finishes (and used to exit) while most of its output is queued.
 * The exit code is the CLI's own (PIPESTATUS), its stderr passes through untouched.
 */
function throughSlowPipe(args: string[], delaySeconds = 0.5): Promise<PipeResult> {
  const quoted = [process.execPath, BIN, ...args, '--data-dir', dataDir].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const script = delaySeconds > 0 ? `${quoted} | (sleep ${delaySeconds}; cat); exit \${PIPESTATUS[0]}` : `${quoted} | cat; exit \${PIPESTATUS[0]}`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLIGHTLOG_HOME: '' } });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out: Buffer.concat(chunks), stderr });
    });
  });
}

/** The same command's output with nobody slow in between. */
function whole(args: string[]): Promise<PipeResult> {
  return throughSlowPipe(args, 0);
}

test('sessions --json through a slow pipe is whole and parses', async () => {
  const r = await throughSlowPipe(['sessions', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.out.length > 2 * 65536, `output of ${r.out.length} bytes overflows the pipe buffer twice`);
  const list = JSON.parse(r.out.toString('utf8')) as unknown[];
  assert.equal(list.length, 401);
});

test('show --json and plain show of a big session through a slow pipe are whole', async () => {
  const j = await throughSlowPipe(['show', bigSession, '--json']);
  assert.equal(j.code, 0, j.stderr);
  const detail = JSON.parse(j.out.toString('utf8')) as { commands: unknown[] };
  assert.equal(detail.commands.length, 3000);

  const plain = await throughSlowPipe(['show', bigSession]);
  assert.equal(plain.code, 0, plain.stderr);
  const ref = await whole(['show', bigSession]);
  assert.ok(plain.out.length > 65536 * 2, `plain show is ${plain.out.length} bytes`);
  assert.equal(plain.out.length, ref.out.length);
  assert.ok(plain.out.equals(ref.out));
  assert.match(plain.out.toString('utf8'), /findings \(0\)\n$/);
});

test('a reader that closes early (| head -1) ends the CLI quietly: no stack, no error line', async () => {
  const r = await new Promise<{ code: number | null; stderr: string; first: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'show', bigSession, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let first = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Read the first chunk, then close the read end, as `head -1` does.
    child.stdout.once('data', (d: Buffer) => {
      first = d.toString().split('\n')[0];
      child.stdout.destroy();
    });
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stderr, first });
    });
  });
  assert.equal(r.first, `session    ${bigSession}`);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
});

test('through a real shell pipe: `sessions --json | (sleep; wc -c)` counts every byte', async () => {
  const ref = await whole(['sessions', '--json']);
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const sh = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" sessions --json --data-dir "${dataDir}" | (sleep 0.5; wc -c)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sh.once('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0);
  assert.equal(Number(r.out.trim()), ref.out.length);
});
