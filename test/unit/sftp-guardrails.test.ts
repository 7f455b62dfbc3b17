/**
 * Guardrail rules over SFTP requests: the `sftp: { op, path }` condition as a user writes it in
 * YAML, matched against the operation and absolute path the gateway decoded, and its config errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { validateConfig } from '../../gateway/config/load';
import { guardrailsOf } from '../../gateway/policy';
import { ConfigError } from '../../gateway/core/errors';
import type { PolicyInput } from '../../gateway/common/types';
import { sftpParts } from '../../gateway/cli/policy-command';

const YAML = `
guardrails:
  - name: no-etc-writes
    match: { sftp: { op: [write, remove], path: ["/etc/**", "*.pem"] } }
    action: deny
    reason: system files are managed by config management
  - name: no-moves-out-of-prod
    match: { sftp: { op: rename, path: /srv/prod/** } }
    action: hold
  - name: no-sftp-on-bastion
    match: { connection: bastion, sftp: {} }
    action: deny
`;

const rules = guardrailsOf(validateConfig(parseDocument(YAML).toJS(), 'flightlog.yaml'));

function decide(sftp: PolicyInput['sftp'], extra: Partial<PolicyInput> = {}): string {
  const text = sftp ? `${sftp.op} ${sftp.path}` : 'ls';
  const d = rules.decide({ connection: 'web', protocol: 'ssh', identity: 'claude', kind: 'sftp', text, sftp, ...extra });
  return d.action === 'allow' ? 'allow' : `${d.action}:${d.rule}`;
}

test('sftp rules match the operation and a glob over the absolute path', () => {
  assert.equal(decide({ op: 'write', path: '/etc/passwd' }), 'block:no-etc-writes');
  assert.equal(decide({ op: 'write', path: '/etc/ssh/sshd_config' }), 'block:no-etc-writes', '** crosses directories');
  assert.equal(decide({ op: 'remove', path: '/etc/hosts' }), 'block:no-etc-writes');
  assert.equal(decide({ op: 'write', path: '/home/me/keys/server.pem' }), 'block:no-etc-writes', '* crosses / too');
  // reading, and the same names elsewhere, pass
  assert.equal(decide({ op: 'read', path: '/etc/passwd' }), 'allow');
  assert.equal(decide({ op: 'mkdir', path: '/etc/new' }), 'allow');
  assert.equal(decide({ op: 'write', path: '/home/me/etc/passwd' }), 'allow');
  assert.equal(decide({ op: 'write', path: '/etcetera' }), 'allow');
  assert.equal(decide({ op: 'write', path: '/home/me/server.pem.bak' }), 'allow');
});

test('a rename matches on either of its paths', () => {
  assert.equal(decide({ op: 'rename', path: '/srv/prod/app.conf', target: '/tmp/app.conf' }), 'hold:no-moves-out-of-prod');
  assert.equal(decide({ op: 'rename', path: '/tmp/app.conf', target: '/srv/prod/app.conf' }), 'hold:no-moves-out-of-prod');
  assert.equal(decide({ op: 'rename', path: '/tmp/a', target: '/tmp/b' }), 'allow');
  assert.equal(decide({ op: 'write', path: '/srv/prod/app.conf' }), 'allow', 'only the named operations');
});

test('sftp conditions never match other kinds of command', () => {
  assert.equal(decide(undefined, { kind: 'exec', text: 'rm /etc/passwd' }), 'allow');
  assert.equal(decide({ op: 'write', path: '/etc/passwd' }, { kind: 'exec' }), 'allow', 'a stray sftp field on an exec');
  assert.equal(decide(undefined), 'allow', 'an sftp command without decoded facts');
  assert.equal(decide({ op: 'read', path: '/x' }, { connection: 'bastion' }), 'block:no-sftp-on-bastion', 'an empty sftp condition is any sftp request');
  assert.equal(decide(undefined, { connection: 'bastion', kind: 'exec' }), 'allow');
});

test('config: sftp conditions validate with located errors', () => {
  const bad = (yaml: string, expected: RegExp): void => {
    assert.throws(
      () => validateConfig(parseDocument(yaml).toJS(), 'f.yaml'),
      (err: unknown) => err instanceof ConfigError && expected.test(err.message),
      yaml,
    );
  };
  bad('guardrails: [{ name: a, match: { sftp: { op: [write, delete] } }, action: deny }]', /guardrails\[0\]\.match\.sftp\.op\[1\]: expected one of write, remove, rename, mkdir, rmdir, setstat, read, got "delete"/);
  bad('guardrails: [{ name: a, match: { sftp: { op: upload } }, action: deny }]', /guardrails\[0\]\.match\.sftp\.op: expected one of .*got "upload"/);
  bad('guardrails: [{ name: a, match: { sftp: { paths: ["/etc/**"] } }, action: deny }]', /guardrails\[0\]\.match\.sftp.*unknown key "paths"/);
  bad('guardrails: [{ name: a, match: { sftp: { path: [] } }, action: deny }]', /guardrails\[0\]\.match\.sftp\.path: expected an absolute path glob or a list of them, got an empty list/);
  bad('guardrails: [{ name: a, match: { sftp: { path: { a: 1 } } }, action: deny }]', /guardrails\[0\]\.match\.sftp\.path/);
  bad('guardrails: [{ name: a, match: { sftp: "/etc/**" }, action: deny }]', /guardrails\[0\]\.match\.sftp/);
  // a single value stands for a list of one
  const one = validateConfig(parseDocument('guardrails: [{ name: a, match: { sftp: { op: write, path: /etc/** } }, action: deny }]').toJS(), 'f.yaml');
  assert.deepEqual(one.guardrails[0].match.sftp, { op: ['write'], path: ['/etc/**'] });
});

test('policy test reads an sftp command back from its recorded text', () => {
  const parts = (text: string) => sftpParts({ kind: 'sftp', text });
  assert.deepEqual(parts('write /etc/passwd'), { op: 'write', path: '/etc/passwd' });
  assert.deepEqual(parts('posix-rename@openssh.com /srv/a → /srv/b/../c'), { op: 'rename', path: '/srv/a', target: '/srv/c' });
  assert.deepEqual(parts('fsetstat /srv/x'), { op: 'setstat', path: '/srv/x' });
  assert.deepEqual(parts('hardlink@openssh.com /a → /etc/b'), { op: 'write', path: '/a', target: '/etc/b' });
  assert.equal(parts('statvfs@openssh.com /'), undefined);
  assert.equal(sftpParts({ kind: 'exec', text: 'write /etc/passwd' }), undefined);
});
