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
const longRunning = ['gateway', 'ui', 'start', 'run'].includes(process.argv[2]);
// A reader that went away (`flightlog sessions | head -1`) has what it wanted: a short command
// ends quietly, like a Unix filter killed by SIGPIPE but without the scary status; a gateway
// drops the output and keeps serving. Any other error on the streams is a real fault.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (!err || err.code !== 'EPIPE') throw err;
    if (!longRunning) process.exit(process.exitCode ?? 0);
  });
}
process.on('uncaughtException', (err) => {
  if (err && err.code === 'EPIPE') return;
  process.stderr.write(`flightlog: internal error: ${String(err && err.message).split('\n')[0]}\n`);
  if (process.env.FLIGHTLOG_DEBUG) process.stderr.write(String(err && err.stack) + '\n');
  // A long-running gateway logs and keeps serving its other sessions; a short command ends.
  if (!longRunning) exitAfterFlush(70);
});

/**
 * Exits once stdout and stderr have handed every byte to the OS. A pipe to a slow reader takes
 * at most 64 KiB at once and Node queues the rest: process.exit() right away would drop it.
 */
function exitAfterFlush(code) {
  process.exitCode = code;
  // A stopped gateway's last lines are not worth hanging on a parent that stopped reading.
  if (longRunning) setTimeout(() => process.exit(code), 2000).unref();
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    // An empty write's callback runs after every earlier write has been flushed (or failed).
    if (stream.destroyed || stream.writableEnded) done();
    else stream.write('', () => done());
  }
}

cli
  .runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })
  .then((code) => {
    // Short-lived commands end here once their output is out; a stopped gateway has closed its
    // handles already, but a stray timer or the stdin reader must not keep the process alive.
    exitAfterFlush(code);
  });
