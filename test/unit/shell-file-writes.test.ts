/**
 * Shell lines that write files touch them: the files the parser can name are blame targets of
 * the SSH command, with the store's own integrity check and `flightlog blame` agreeing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fileWrites } from '../../gateway/policy/file-writes';
import { shellFileTouches } from '../../gateway/ssh/file-targets';
import { blame } from '../../gateway/store/blame';
import { checkSession } from '../../gateway/store/integrity';
import { getSession } from '../../gateway/store/queries';
import { tempRecorder } from '../helpers/recorder';

const w = (line: string) => fileWrites(line).map((f) => `${f.op} ${f.path}`);

test('redirections write their file; reads, fds and /dev are not writes', () => {
  assert.deepEqual(w('echo worker_processes 4 > /etc/nginx/nginx.conf'), ['write /etc/nginx/nginx.conf']);
  assert.deepEqual(w('date >> /var/log/deploy.log 2>&1'), ['write /var/log/deploy.log']);
  assert.deepEqual(w('make &> /tmp/build.out; cat < /etc/hosts'), ['write /tmp/build.out']);
  assert.deepEqual(w('cmd >/dev/null 2>/dev/stderr'), []);
  assert.deepEqual(w('cat /etc/nginx/nginx.conf | grep listen'), []);
  assert.deepEqual(w("printf '%s' \"x\" >| '/srv/a b.txt'"), ['write /srv/a b.txt'], 'quoting resolved as the shell would');
});

test('tee, sed -i, cp, mv, rm, touch, dd and scp uploads name what they write', () => {
  assert.deepEqual(w('echo x | sudo tee -a /etc/hosts /etc/hosts.bak'), ['write /etc/hosts', 'write /etc/hosts.bak']);
  assert.deepEqual(w("sed -i 's/80/8080/' /etc/nginx/nginx.conf"), ['write /etc/nginx/nginx.conf']);
  assert.deepEqual(w("sed -i.bak -e 's/a/b/' -e '/x/d' /etc/a.conf"), ['write /etc/a.conf'], 'both -e scripts are skipped, even one that looks like a path');
  assert.deepEqual(w("sed 's/a/b/' /etc/a.conf"), [], 'sed without -i only reads');
  assert.deepEqual(w('cp -r /srv/new /srv/current'), ['write /srv/current']);
  assert.deepEqual(w('mv /tmp/app.new /opt/app'), ['write /opt/app', 'remove /tmp/app.new']);
  assert.deepEqual(w('rm -rf /var/cache/app/'), ['remove /var/cache/app']);
  assert.deepEqual(w('touch /run/app.flag && dd if=/dev/zero of=/srv/disk.img bs=1M count=1'), ['write /run/app.flag', 'write /srv/disk.img']);
  assert.deepEqual(w('scp -t /etc/motd'), ['write /etc/motd']);
  assert.deepEqual(w('bash -c "echo hi > /etc/motd"'), ['write /etc/motd'], 'a nested shell line is walked too');
});

test('paths the gateway cannot know are left out rather than guessed', () => {
  assert.deepEqual(w('echo x > relative.txt; echo y > ~/notes; echo z > $HOME/f; rm /tmp/*.log'), []);
  assert.deepEqual(w('cp a b'), [], 'relative destination: the remote cwd is unknown');
  assert.deepEqual(w('echo "unterminated > /etc/x'), [], 'an odd line is no crash');
});

test('only SSH shell and exec commands get file targets', () => {
  const ssh = { connection: 'web-1', protocol: 'ssh' };
  assert.deepEqual(shellFileTouches(ssh, { kind: 'exec', text: "sed -i 's/a/b/' /etc/x" }), { targets: ['file:web-1:/etc/x'], detail: { files: [{ path: '/etc/x', op: 'write' }] } });
  assert.equal(shellFileTouches(ssh, { kind: 'exec', text: 'ls /etc' }), null);
  assert.equal(shellFileTouches({ connection: 'db', protocol: 'postgres' }, { kind: 'sql', text: "COPY t TO '/tmp/x'" }), null);
});

test('a recorded shell write is a blame target for its host and passes the integrity check', async () => {
  const { dir, db, key, rec } = tempRecorder('flightlog-shell-writes-', { touchesOf: shellFileTouches });
  try {
    const s = rec.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude', runId: null });
    const c1 = s.startCommand({ kind: 'shell', text: "sed -i 's/80/8080/' /etc/nginx/nginx.conf", detail: { source: 'typed' } });
    c1.finish({ status: 'ok', result: { exitCode: 0 } });
    const c2 = s.startCommand({ kind: 'shell', text: 'cat /etc/nginx/nginx.conf' });
    c2.finish({ status: 'ok', result: { exitCode: 0 } });
    const other = rec.openSession({ connection: 'web-2', protocol: 'ssh', identity: 'claude', runId: null });
    other.startCommand({ kind: 'exec', text: 'rm /etc/nginx/nginx.conf' }).finish({ status: 'ok' });
    s.close();
    other.close();
    await rec.flush();
    const d = getSession(db, s.id);
    assert.deepEqual(d.commands[0].targets, ['file:web-1:/etc/nginx/nginx.conf']);
    assert.deepEqual(d.commands[0].detail, { source: 'typed', files: [{ path: '/etc/nginx/nginx.conf', op: 'write' }] }, 'the listener detail is kept');
    const r = blame(db, 'file:web-1:/etc/nginx/nginx.conf');
    assert.deepEqual(r.entries.map((e) => [e.text, e.access]), [["sed -i 's/80/8080/' /etc/nginx/nginx.conf", 'write']]);
    assert.deepEqual(blame(db, 'file:web-2:/etc/nginx/nginx.conf').entries.map((e) => e.access), ['write']);
    const integrity = checkSession(db, s.id, { publicKeyPem: key.publicKeyPem, fingerprint: key.fingerprint });
    assert.equal(integrity.state, 'verified', integrity.message);
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
