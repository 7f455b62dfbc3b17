import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDb } from '../../gateway/store/db';
import { iterateRawEvents } from '../../gateway/store/queries';
import { verifyChain } from '../../gateway/store/chain';

test('every acknowledged event survives a SIGKILL of the writer, and the chain verifies', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-crash-'));
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'helpers', 'crash-writer.js'), dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let sessionId = '';
  let acked = 0;
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const [word, value] = l.split(' ');
        if (word === 'session') sessionId = value;
        if (word === 'acked') acked = Number(value);
      }
      // Kill mid-stream, after a good number of committed batches.
      if (acked > 3000 && !child.killed) {
        child.kill('SIGKILL');
      }
    });
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  assert.ok(sessionId, 'the writer reported its session');
  assert.ok(acked > 3000);
  const db = openDb(dataDir);
  const events = [...iterateRawEvents(db, sessionId)];
  assert.ok(events.length >= acked, `all ${acked} acknowledged events are there (found ${events.length})`);
  const check = verifyChain(sessionId, events);
  assert.equal(check.ok, true, check.reason);
  db.close();
});
