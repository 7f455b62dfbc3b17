import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { replaceData, SseFramer, type SseBlock } from '../../gateway/mcp/http-sse';

function frame(chunks: Array<string | Uint8Array>): { blocks: SseBlock[]; rest: string } {
  const blocks: SseBlock[] = [];
  const f = new SseFramer((b) => blocks.push(b));
  for (const c of chunks) f.push(typeof c === 'string' ? new TextEncoder().encode(c) : c);
  return { blocks, rest: f.end() };
}

test('each event comes out whole with its raw text, whatever the line endings', () => {
  const stream = 'event: message\nid: 1\ndata: {"a":1}\n\n: keepalive\r\n\r\nid: 2\r\ndata: {"b":\r\ndata: 2}\r\n\r\nretry: 500\rdata: x\r\r';
  const { blocks, rest } = frame([stream]);
  assert.equal(rest, '');
  assert.equal(blocks.map((b) => b.raw).join(''), stream, 'nothing lost or added');
  assert.deepEqual(
    blocks.map((b) => b.event),
    [{ event: 'message', data: '{"a":1}', id: '1' }, null, { event: 'message', data: '{"b":\n2}', id: '2' }, { event: 'message', data: 'x' }],
  );
});

test('split anywhere (inside a CRLF, inside a UTF-8 character) it frames the same', () => {
  const stream = 'data: {"text":"héllo ✓"}\r\n\r\nid: 7\ndata: second\n\n';
  const bytes = new TextEncoder().encode(stream);
  const whole = frame([bytes]).blocks;
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 8 }), (cuts) => {
      const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
      const chunks = at.slice(1).map((end, i) => bytes.subarray(at[i], end));
      assert.deepEqual(frame(chunks).blocks, whole);
    }),
  );
});

test('an unterminated event is handed back at the end, never dispatched', () => {
  const { blocks, rest } = frame(['data: done\n\ndata: cut off']);
  assert.equal(blocks.length, 1);
  assert.equal(rest, 'data: cut off');
});

test('replaceData keeps the other fields and swaps the data', () => {
  assert.equal(replaceData('event: endpoint\r\nid: 3\r\ndata: http://up:1/message?s=1\r\n\r\n', '/message?s=1'), 'event: endpoint\nid: 3\ndata: /message?s=1\n\n');
});
