#!/usr/bin/env node
'use strict';
// Runs the compiled tests (dist/test/**/*.test.js) with node's own test runner.
// Usage: node scripts/run-tests.js [unit|integration|e2e ...] [--filter SUBSTRING]
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const fi = args.indexOf('--filter');
const filter = fi >= 0 ? args.splice(fi, 2)[1] : null;
const suites = args.length ? args : ['unit', 'integration', 'e2e'];

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
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status === null ? 1 : r.status);
