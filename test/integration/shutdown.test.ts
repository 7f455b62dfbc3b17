import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway } from '../helpers/gateway';
import { openDb } from '../../gateway/store/db';
import { getSession, iterateRawEvents } from '../../gateway/store/queries';
import { sealMessage, verifyChain, verifySeal } from '../../gateway/store/chain';

test('stopping the gateway closes and seals every open session, and the seals verify', async () => {
  const gw = await startTestGateway();
  const open = [0, 1, 2].map((i) => gw.gateway.recorder.openSession({ connection: `c${i}`, protocol: 'postgres', identity: 'claude' }));
  open[0].startCommand({ kind: 'sql', text: 'SELECT pg_sleep(60)' });
  for (const s of open) s.event('bytes', 'client→upstream', 'mid-flight');
  const pub = gw.gateway.key.publicKeyPem;
  await gw.close();
  const db = openDb(gw.dataDir);
  for (const s of open) {
    const d = getSession(db, s.id);
    assert.equal(d.status, 'closed');
    assert.match(d.endReason ?? '', /test finished/);
    const events = [...iterateRawEvents(db, s.id)];
    assert.equal(events.at(-1)?.kind, 'close');
    const chain = verifyChain(s.id, events);
    assert.equal(chain.ok, true);
    assert.equal(verifySeal(pub, sealMessage(s.id, chain.count, chain.lastHash), d.seal!), true);
  }
  const running = getSession(db, open[0].id).commands[0];
  assert.equal(running.status, 'cancelled', 'a command still running at shutdown is ended, not left running');
  db.close();
});
