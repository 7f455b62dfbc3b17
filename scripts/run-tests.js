#!/usr/bin/env node
'use strict';
// Runs the compiled tests (dist/test/**/*.test.js) with node's own test runner.
// Usage: node scripts/run-tests.js [unit|fuzz|integration|e2e ...] [--filter SUBSTRING]
//        [--long] [--runs N] [--seed S]   (fuzz budget: see test/fuzz/budget.ts)
//
// The tests get a private TMPDIR for this run. Whatever is left in it afterwards (a temp dir, a
// socket, a postgres, sshd, gateway or chromium still running from it) is a leak a failed or
// passed test did not clean up: the run fails and names it. A private dir rather than a diff of
// /tmp keeps the check exact while other runs on the machine come and go.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const fi = args.indexOf('--filter');
const filter = fi >= 0 ? args.splice(fi, 2)[1] : null;
const fuzzEnv = {};
for (const [flag, name] of [['--runs', 'FLIGHTLOG_FUZZ_RUNS'], ['--seed', 'FLIGHTLOG_FUZZ_SEED']]) {
  const i = args.indexOf(flag);
  if (i >= 0) fuzzEnv[name] = args.splice(i, 2)[1];
}
const li = args.indexOf('--long');
if (li >= 0) {
  args.splice(li, 1);
  fuzzEnv.FLIGHTLOG_FUZZ_LONG = '1';
}
const suites = args.length ? args : ['unit', 'fuzz', 'integration', 'e2e'];

const files = [];
const walk = (dir) => {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js') && (!filter || p.includes(filter))) files.push(p);
  }
};
for (const s of suites) walk(path.join(root, 'dist', 'test', s));
if (files.length === 0) {
  console.error('no test files found: run "npm run build" first');
  process.exit(1);
}
files.sort();

const runTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-tests-'));
// PostgreSQL runs as its own user when the tests run as root: it must reach its dirs in here.
fs.chmodSync(runTmp, 0o755);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, ...fuzzEnv, TMPDIR: runTmp },
});
let status = r.status === null ? 1 : r.status;

/** Processes whose command line or working dir points into the run's temp dir. */
function processesIn(dir) {
  const found = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let cmd = '';
    let cwd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // gone meanwhile, or not ours to read
    }
    if (cmd.includes(dir) || cwd === dir || cwd.startsWith(dir + '/')) found.push({ pid: Number(pid), cmd: cmd.slice(0, 160) });
  }
  return found;
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const leaks = [];
if (fs.existsSync('/proc')) {
  // A server killed at the test process's exit can take a moment to be gone: wait for that.
  let procs = processesIn(runTmp);
  for (let i = 0; i < 50 && procs.length; i++) {
    sleepMs(100);
    procs = processesIn(runTmp);
  }
  for (const p of procs) {
    leaks.push(`process ${p.pid} still running: ${p.cmd}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
// Caches third-party tools keep in TMPDIR on purpose (jiti: the config loader eslint and
// electron-builder use, run by some tests) are not a test's leftovers.
const TOOL_CACHES = new Set(['jiti']);
for (const name of fs.readdirSync(runTmp)) if (!TOOL_CACHES.has(name)) leaks.push(`left in the temp dir: ${name}`);
fs.rmSync(runTmp, { recursive: true, force: true });

if (leaks.length) {
  console.error(`\nrun-tests: the tests left ${leaks.length} thing(s) behind (issue 11: clean up in t.after/finally or use test/helpers/tmp.ts):`);
  for (const l of leaks) console.error(`  ${l}`);
  if (status === 0) status = 1;
}
process.exit(status);
