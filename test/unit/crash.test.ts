import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { openDb } from '../../gateway/store/db';
import { iterateRawEvents } from '../../gateway/store/queries';
import { verifyChain } from '../../gateway/store/chain';
import { tempDir } from '../helpers/tmp';

for (const [name, args] of [
  ['every acknowledged event survives a SIGKILL of the writer, and the chain verifies', []],
  // the writer thread never gets to load: every acknowledged event is only in the journal
  ['every acknowledged event survives a SIGKILL before any was loaded into the store (journal replay)', ['600000']],
] as const) test(name, async () => {
  const dataDir = tempDir('flightlog-crash-');
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'helpers', 'crash-writer.js'), dataDir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
