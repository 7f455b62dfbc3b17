#!/usr/bin/env node
'use strict';
// The process a user starts is the gateway itself (no wrapper), so signals reach it.
let cli;
try {
  cli = require('../dist/gateway/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/gateway/cli/main.js')) {
    process.stderr.write('flightlog: not built yet: run "npm run build" (npm ci does it through prepare)\n');
    process.exit(1);
  }
  throw err;
}
// A closed stdout/stderr (the terminal or pipe went away) must not turn every later log line
// into another error: drop the output, keep serving.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err && err.code !== 'EPIPE') throw err;
  });
}
process.on('uncaughtException', (err) => {
  if (err && err.code === 'EPIPE') return;
  process.stderr.write(`flightlog: internal error: ${String(err && err.message).split('\n')[0]}\n`);
  if (process.env.FLIGHTLOG_DEBUG) process.stderr.write(String(err && err.stack) + '\n');
  // A long-running gateway logs and keeps serving its other sessions; a short command ends.
  if (!['gateway', 'ui', 'start', 'run'].includes(process.argv[2])) process.exit(70);
});
cli
  .runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })
  .then((code) => {
    process.exitCode = code;
    // Short-lived commands end here; a stopped gateway has closed its handles already.
    setImmediate(() => process.exit(code));
  });
