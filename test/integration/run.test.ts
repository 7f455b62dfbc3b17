import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway } from '../helpers/gateway';
import { listRuns } from '../../gateway/store/queries';
import { checkCredential } from '../../gateway/store/identities';
import { spawnFlightlog } from '../helpers/cli';


const fl = (args: string[], env: Record<string, string>) => spawnFlightlog(args, { ...process.env, ...env });

test('flightlog run gives the agent a run token of its own, records the run and its exit code, then revokes the token', async () => {
  const gw = await startTestGateway();
  try {
    gw.addIdentity('claude');
    const script = 'echo "run=$FLIGHTLOG_RUN_ID"; echo "pgpass=$PGPASSWORD"; echo "token=$FLIGHTLOG_TOKEN"; exit 3';
    const r = await fl(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', 'sh', '-c', script, 'postgres://app:hunter2-in-argv@db/app'], {});
    assert.equal(r.code, 3, r.stderr);
    const runId = /run=(run_\w+)/.exec(r.stdout)?.[1];
    assert.ok(runId, r.stdout);
    const runs = listRuns(gw.gateway.db);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].id, runId);
    assert.equal(runs[0].exitCode, 3);
    assert.equal(runs[0].identity, 'claude');
    assert.ok(runs[0].endedAt);
    assert.equal(runs[0].argv[0], 'sh');
    assert.doesNotMatch(JSON.stringify(runs[0].argv), /hunter2-in-argv/, 'a password in argv is masked in the store');
    // No connections in this config: no PG variables, no ssh token.
    assert.match(r.stdout, /pgpass=\n/);
    const missing = await fl(['run', '--identity', 'nobody', '--data-dir', gw.dataDir, '--', 'true'], {});
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no identity "nobody"/);
    const notFound = await fl(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', 'definitely-not-a-command-xyz'], {});
    assert.equal(notFound.code, 127);
    assert.match(notFound.stderr, /command not found/);
  } finally {
    await gw.close();
  }
});

test('a run token authenticates with its run id until the run ends', async () => {
  const gw = await startTestGateway({
    connections: [{ name: 'db', protocol: 'postgres', upstream: { host: '127.0.0.1', port: 1, user: 'u' }, identities: ['claude'] }],
  });
  try {
    gw.addIdentity('claude');
    const r = await fl(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', 'sh', '-c', 'echo "$PGUSER $PGPASSWORD $PGHOST:$PGPORT"'], {});
    assert.equal(r.code, 0, r.stderr);
    const [user, token, addr] = r.stdout.trim().split(' ');
    assert.equal(user, 'claude');
    assert.match(token, /^flt_/);
    if (gw.gateway.listeners.get('db')?.listener) assert.equal(addr, `${gw.address('db').host}:${gw.address('db').port}`);
    const check = checkCredential(gw.gateway.db, 'claude', { token });
    assert.equal(check.reason, 'revoked', 'the run token is revoked once the agent exits');
  } finally {
    await gw.close();
  }
});

test('under flightlog run, plain `ssh -F $FLIGHTLOG_SSH_CONFIG host cmd` reaches the host through the gateway, tagged with the run', async () => {
  const { startSshd } = await import('../helpers/sshd');
  const sshd = await startSshd();
  const gw = await startTestGateway({
    connections: [{ name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] }],
  });
  try {
    gw.addIdentity('claude');
    const script = 'ssh -F "$FLIGHTLOG_SSH_CONFIG" -o BatchMode=no -o LogLevel=ERROR web "echo hello-from-$(hostname)"; echo "run=$FLIGHTLOG_RUN_ID"';
    const r = await fl(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', 'sh', '-c', script], { DISPLAY: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello-from-/);
    const runId = /run=(run_\w+)/.exec(r.stdout)?.[1];
    await gw.flush();
    const sessions = gw.sessions();
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0].protocol, 'ssh');
    assert.equal(sessions[0].run, runId);
    const detail = gw.show(sessions[0].id);
    assert.match(detail.commands[0].text, /echo hello-from-/);
  } finally {
    await gw.close();
    await sshd.stop();
  }
});
