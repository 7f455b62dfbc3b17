/**
 * The `flightlog run` line Settings offers to copy must work when pasted into a shell: plain
 * `flightlog` only when that is on PATH and is this install, `npx flightlog` from the project it
 * is installed in, else `node /absolute/path/bin/flightlog.js`, which works from anywhere.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunLineHelp } from '../common/api-types';

/** This install's bin/flightlog.js: dist/gateway/settings/ → the package root. */
export function installedBin(): string {
  return path.resolve(__dirname, '..', '..', '..', 'bin', 'flightlog.js');
}

/** A word as a POSIX shell reads it back unchanged. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function realpath(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

/** `flightlog` on PATH, when it is this very install (a `npm link`, a global install of it). */
function onPath(env: NodeJS.ProcessEnv, bin: string): boolean {
  const own = realpath(bin);
  if (!own) return false;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const found = realpath(path.join(dir, 'flightlog'));
    if (found) return found === own;
  }
  return false;
}

/** Is `cwd` a project where `npx flightlog` runs this install without asking a registry? */
function npxWorks(cwd: string, bin: string): boolean {
  const root = path.dirname(path.dirname(bin));
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(cwd, 'package.json'), 'utf8')) as { name?: unknown };
    if (pkg.name === 'flightlog' && realpath(cwd) === realpath(root)) return true;
  } catch {
    // no package here
  }
  const local = realpath(path.join(cwd, 'node_modules', '.bin', 'flightlog'));
  return local !== null && local === realpath(bin);
}

/** The command prefix that starts this Flightlog from a shell, and how to make it plain `flightlog`. */
export function flightlogCommand(opts: { cwd?: string; env?: NodeJS.ProcessEnv; bin?: string } = {}): { prefix: string; help: RunLineHelp } {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const bin = opts.bin ?? installedBin();
  // a packaged app has no bin/flightlog.js to name: its CLI is whatever the install put on PATH
  if (!fs.existsSync(bin)) return { prefix: 'flightlog', help: { via: 'path', cwd: null, anywhere: 'flightlog', onPath: 'install the flightlog CLI of this package on your PATH' } };
  const anywhere = `node ${shellWord(bin)}`;
  const root = path.dirname(path.dirname(bin));
  const link = `run "npm link" once in ${root}, or install a packaged build`;
  if (onPath(env, bin)) return { prefix: 'flightlog', help: { via: 'path', cwd: null, anywhere: 'flightlog', onPath: 'flightlog is on your PATH' } };
  if (npxWorks(cwd, bin)) return { prefix: 'npx flightlog', help: { via: 'npx', cwd, anywhere, onPath: link } };
  return { prefix: anywhere, help: { via: 'node', cwd: null, anywhere, onPath: link } };
}
