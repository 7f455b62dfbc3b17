import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestGateway } from '../helpers/gateway';
import type { LiveMessage, SessionDetail, EventView } from '../../gateway/control-api/types';

test('control API: token required, sessions, events paged, search, and a live feed', async () => {
  const gw = await startTestGateway();
  try {
    const base = gw.gateway.control.url;
    const token = gw.gateway.control.token;
    const get = async (p: string) => {
      const r = await fetch(base + p, { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, body: (await r.json()) as unknown };
    };
    for (const p of ['/api/sessions', '/api/search?q=x', '/api/findings', '/api/runs', '/api/status']) {
      assert.equal((await fetch(base + p)).status, 401, p);
      assert.equal((await fetch(base + p, { headers: { authorization: 'Bearer wrong' } })).status, 401, p);
    }

    const messages: LiveMessage[] = [];
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live?token=${token}`);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as LiveMessage));
    const bad = new WebSocket(`${base.replace('http', 'ws')}/api/live?token=nope`);
    await new Promise<void>((r) => (bad.once('error', () => r()), bad.once('unexpected-response', () => r())));

    const s = gw.gateway.recorder.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
    for (let i = 0; i < 25; i++) s.event('bytes', 'client→upstream', { i });
    s.startCommand({ kind: 'sql', text: 'SELECT * FROM users' }).finish({ status: 'ok', result: { rowCount: 3, tag: 'SELECT 3' } });
    await gw.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(messages.some((m) => m.type === 'session' && m.sessionId === s.id && m.status === 'live'));
    assert.ok(messages.some((m) => m.type === 'command' && m.sessionId === s.id));
    assert.ok(messages.filter((m) => m.type === 'events').length < 5, 'event notices are coalesced per commit');

    const list = (await get('/api/sessions')).body as { sessions: Array<{ id: string }>; total: number };
    assert.equal(list.total, 1);
    const detail = (await get(`/api/sessions/${s.id}`)).body as SessionDetail;
    assert.equal(detail.commands[0].text, 'SELECT * FROM users');
    const page1 = (await get(`/api/sessions/${s.id}/events?limit=10`)).body as { events: EventView[]; more: boolean };
    assert.deepEqual(page1.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(page1.more, true);
    const page2 = (await get(`/api/sessions/${s.id}/events?afterSeq=10&limit=100`)).body as { events: EventView[]; more: boolean };
    assert.equal(page2.events[0].seq, 11);
    assert.equal(page2.more, false);
    const hits = (await get('/api/search?q=users')).body as Array<{ sessionId: string }>;
    assert.equal(hits[0].sessionId, s.id);
    assert.equal((await get('/api/sessions/ses_missing')).status, 404);
    assert.equal((await get(`/api/sessions/${s.id}/events?limit=-1`)).status, 400);
    ws.close();
    s.close();
  } finally {
    await gw.close();
  }
});
