/**
 * Masking a model stream over its reassembled text: Anthropic text deltas of a few characters
 * each, masked per delta (as a live-masked client stream is) and gathered (as the record is).
 * Run: node dist/test/bench/bench-sse.js
 */
import { createMasker } from '../../gateway/masking';
import { SseStreamMasker } from '../../gateway/http/sse-mask';
import type { SseEvent } from '../../gateway/http/sse';

const DELTAS = 20_000;
const words = 'the quick brown fox jumps over the lazy dog while SELECT id FROM orders runs '.split(/(?<= )/);
const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(7) });
const events: SseEvent[] = [];
for (let i = 0; i < DELTAS; i++) {
  events.push({ event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: words[i % words.length] } }) });
}
const bytes = events.reduce((n, e) => n + e.data.length + 30, 0);

for (const [label, batch] of [['per delta (live)', 0], ['gathered (record)', 2048]] as const) {
  const runs: string[] = [];
  for (let r = 0; r < 3; r++) {
    let out = 0;
    const t0 = process.hrtime.bigint();
    const m = new SseStreamMasker(masker, () => out++, () => undefined, batch);
    for (const e of events) m.push(e);
    m.end();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (out !== DELTAS) throw new Error(`lost events: ${out} of ${DELTAS}`);
    runs.push(`${Math.round(DELTAS / s / 1000)}k deltas/s (${(bytes / 1e6 / s).toFixed(1)} MB/s)`);
  }
  console.log(`${label.padEnd(18)} ${runs.join(', ')}`);
}
