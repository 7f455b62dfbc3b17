/**
 * Temp dirs and child processes that go away when the test process ends, whether its tests
 * passed, failed or threw in a hook: `scripts/run-tests.js` fails a run that leaves any behind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const paths = new Set<string>();
const reapers = new Set<() => void>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  // 'exit' handlers must be synchronous; processes first, so nothing writes into a removed dir.
  process.once('exit', () => {
    for (const r of reapers) {
      try {
        r();
      } catch {
        // best effort: the next reaper and the dirs still get their turn
      }
    }
    for (const p of paths) fs.rmSync(p, { recursive: true, force: true });
  });
}

/** A fresh dir under os.tmpdir() named PREFIX…, removed at process exit at the latest. */
export function tempDir(prefix = 'flightlog-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  removeAtExit(dir);
  return dir;
}

/** Removes a file or dir at process exit (a test's own finally/after may remove it earlier). */
export function removeAtExit(p: string): void {
  hook();
  paths.add(p);
}

/** Runs a synchronous stop (kill a pid, `pg_ctl stop`) at process exit; call the returned function once stopped. */
export function reapAtExit(stop: () => void): () => void {
  hook();
  reapers.add(stop);
  return () => reapers.delete(stop);
}
