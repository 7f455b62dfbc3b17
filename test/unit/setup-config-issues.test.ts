/**
 * The collecting validator behind the connection form: every refused field at once, while the
 * loader itself still stops at the first one with the same `file:line: path: expected …` line.
 * And the run line's three spellings: on PATH, npx from the project, node and an absolute path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configIssues, validateConfig } from '../../gateway/config/load';
import { flightlogCommand } from '../../gateway/settings/run-line';
import { tempDir } from '../helpers/tmp';

describe('configIssues', () => {
  it('lists every refused field of every connection, in document order', () => {
    const raw = {
      connections: [
        { name: 'ok', protocol: 'http', listen: '127.0.0.1:0', upstream: { url: 'https://example.com' }, identities: ['a'] },
        { name: '-bad', protocol: 'postgres', listen: 'x', upstream: { port: 99999, password: 'plain' }, identities: [], mask: 'loud' },
        { name: 'ok', protocol: 'gopher', upstream: {}, identities: ['a'] },
      ],
    };
    const issues = configIssues(raw, 'f.yaml');
    assert.deepEqual(
      issues.map((i) => i.docPath),
      [
        'connections[1].name',
        'connections[1].listen',
        'connections[1].upstream.host',
        'connections[1].upstream.port',
        'connections[1].upstream.user',
        'connections[1].upstream.password',
        'connections[1].identities',
        'connections[1].mask',
        'connections[2].name',
        'connections[2].protocol',
        'connections[2].listen',
      ],
    );
    assert.match(issues.find((i) => i.docPath === 'connections[2].name')?.expected ?? '', /duplicate connection name "ok"/);
    // the loader still names the first one, as before
    assert.throws(() => validateConfig(raw, 'f.yaml'), (err: Error) => err.message.startsWith('f.yaml: connections[1].name:'));
  });

  it('is empty for a valid config and reports a bad document as one issue', () => {
    assert.deepEqual(configIssues({ connections: [] }, 'f.yaml'), []);
    assert.deepEqual(
      configIssues('just text', 'f.yaml').map((i) => i.expected),
      ['expected a mapping with connections:'],
    );
  });
});

describe('the run line', () => {
  const dir = tempDir('flightlog-runline-');
  const root = path.join(dir, 'install');
  const bin = path.join(root, 'bin', 'flightlog.js');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.writeFileSync(bin, '#!/usr/bin/env node\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'package.json'), '{"name":"flightlog"}');

  it('is plain flightlog when PATH leads to this install', () => {
    const pathDir = path.join(dir, 'path-bin');
    fs.mkdirSync(pathDir, { recursive: true });
    fs.symlinkSync(bin, path.join(pathDir, 'flightlog'));
    assert.equal(flightlogCommand({ bin, cwd: '/', env: { PATH: `${pathDir}:/usr/bin` } }).prefix, 'flightlog');
  });

  it('is npx flightlog in the project, else node and the absolute path', () => {
    const fromProject = flightlogCommand({ bin, cwd: root, env: { PATH: '/usr/bin' } });
    assert.equal(fromProject.prefix, 'npx flightlog');
    assert.equal(fromProject.help.cwd, root);
    const elsewhere = flightlogCommand({ bin, cwd: dir, env: { PATH: '/usr/bin' } });
    assert.equal(elsewhere.prefix, `node ${bin}`);
    assert.match(elsewhere.help.onPath, /npm link/);
    // another flightlog on PATH is not this one: not trusted to be it
    const other = path.join(dir, 'other-bin');
    fs.mkdirSync(other, { recursive: true });
    fs.writeFileSync(path.join(other, 'flightlog'), '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(flightlogCommand({ bin, cwd: dir, env: { PATH: other } }).prefix, `node ${bin}`);
  });

  it('quotes a path a shell would split, and names no path that is not there', () => {
    const spaced = path.join(dir, 'my install', 'bin', 'flightlog.js');
    fs.mkdirSync(path.dirname(spaced), { recursive: true });
    fs.writeFileSync(spaced, '');
    assert.equal(flightlogCommand({ bin: spaced, cwd: '/', env: { PATH: '' } }).prefix, `node '${spaced}'`);
    assert.equal(flightlogCommand({ bin: path.join(dir, 'gone', 'bin', 'flightlog.js'), cwd: '/', env: { PATH: '' } }).prefix, 'flightlog');
  });
});
