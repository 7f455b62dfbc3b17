import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMasker } from '../../gateway/masking';
import { SseStreamMasker } from '../../gateway/http/sse-mask';
import type { SseEvent } from '../../gateway/http/sse';
import { ALNUM, p, rand } from '../helpers/masking-fixtures';

const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(7) });
const GH = p('gh', 'p_') + rand(ALNUM, 36);
const AWS = p('AK', 'IA') + 'Q3EXAMPLEZ7K2M4P';

function run(events: SseEvent[], batchChars = 0): SseEvent[] {
  const out: SseEvent[] = [];
  const m = new SseStreamMasker(masker, (e) => out.push(e), () => undefined, batchChars);
  for (const e of events) m.push(e);
  m.end();
  return out;
}

/** Cuts text at the given offsets (sorted, deduplicated, inside the text). */
function cut(text: string, at: number[]): string[] {
  const cuts = [...new Set(at.map((a) => a % (text.length + 1)))].sort((a, b) => a - b);
  const parts: string[] = [];
  let last = 0;
  for (const c of cuts) {
    parts.push(text.slice(last, c));
    last = c;
  }
  parts.push(text.slice(last));
  return parts;
}

const anthropicDelta = (index: number, t: string): SseEvent => ({
  event: 'content_block_delta',
  data: JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }),
});

test('anthropic text deltas, cut anywhere: one event out per event in, the joined slices are the masked text', () => {
  const text = `The token is ${GH} and the key ${AWS}, use them well.`;
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 12 }), fc.constantFrom(0, 16, 2048), (at, batch) => {
      const parts = cut(text, at);
      const events: SseEvent[] = [
        { event: 'content_block_start', data: JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) },
        ...parts.map((t) => anthropicDelta(0, t)),
        { event: 'content_block_stop', data: JSON.stringify({ type: 'content_block_stop', index: 0 }) },
        { event: 'message_stop', data: JSON.stringify({ type: 'message_stop' }) },
      ];
      const out = run(events, batch);
      assert.deepEqual(out.map((e) => e.event), events.map((e) => e.event), 'same events, same order');
      const joined = out
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => (JSON.parse(e.data) as { delta: { text: string } }).delta.text)
        .join('');
      assert.equal(joined, masker.maskText(text).text);
      assert.ok(!out.some((e) => e.data.includes(GH.slice(4, 20)) || e.data.includes(AWS.slice(4))));
    }),
    { numRuns: 200 },
  );
});

test('openai chat chunks with content and tool arguments interleaved: each channel masked on its own', () => {
  const content = `key ${AWS} here`;
  const args = JSON.stringify({ cmd: `gh auth login --with-token ${GH}` });
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): SseEvent => ({
    event: 'message',
    data: JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] }),
  });
  const cs = cut(content, [5, 9, 14]);
  const as = cut(args, [20, 40, 50, 60]);
  const events: SseEvent[] = [];
  for (let i = 0; i < Math.max(cs.length, as.length); i++) {
    const delta: Record<string, unknown> = {};
    if (cs[i] !== undefined) delta.content = cs[i];
    if (as[i] !== undefined) delta.tool_calls = [{ index: 0, function: { arguments: as[i] } }];
    events.push(chunk(delta));
  }
  events.push(chunk({}, 'tool_calls'), { event: 'message', data: '[DONE]' });
  const out = run(events);
  assert.equal(out.length, events.length);
  assert.equal(out.at(-1)?.data, '[DONE]');
  const deltas = out.slice(0, -1).map((e) => (JSON.parse(e.data) as { choices: Array<{ delta: Record<string, any> }> }).choices[0].delta);
  assert.equal(deltas.map((d) => d.content ?? '').join(''), masker.maskText(content).text);
  assert.equal(deltas.map((d) => d.tool_calls?.[0]?.function?.arguments ?? '').join(''), masker.maskText(args).text);
});

test('a plain stream: data pieces masked over their join; ordinary events pass unchanged and in step', () => {
  const out = run([
    { event: 'tick', data: '{"i":1}', id: '1' },
    { event: 'token', data: GH.slice(0, 10) },
    { event: 'token', data: GH.slice(10) },
    { event: 'token', data: ' done' },
  ]);
  assert.deepEqual(out[0], { event: 'tick', data: '{"i":1}', id: '1' });
  assert.equal(out.map((e) => e.data).join(''), masker.maskText(`{"i":1}${GH} done`).text);
  assert.ok(!out.some((e) => e.data.includes(GH.slice(0, 10))));
});

test('a long stream holding a possible secret stays bounded: events are settled, never lost', () => {
  const events: SseEvent[] = [anthropicDelta(0, 'ghp_')];
  for (let i = 0; i < 1000; i++) events.push({ event: 'ping', data: JSON.stringify({ type: 'ping' }) });
  const got: SseEvent[] = [];
  const m = new SseStreamMasker(masker, (e) => got.push(e));
  for (const e of events) m.push(e);
  assert.ok(events.length - got.length <= 257, `held back ${events.length - got.length}`);
  m.end();
  assert.equal(got.length, events.length);
});
