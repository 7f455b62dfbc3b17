/**
 * `flightlog mask [FILE]`: masks a file or stdin to stdout so a log can be shared, and prints
 * a summary of what was found on stderr (counts per kind, never a value).
 */
import { StringDecoder } from 'node:string_decoder';
import type { Masker } from '../common/types';
import { createStreamMasker } from './stream';

export interface MaskCommandIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  masker: Masker;
}

function writeAll(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (text.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    stream.once('error', onError);
    const ok = stream.write(text, () => undefined);
    const done = (): void => {
      stream.removeListener('error', onError);
      resolve();
    };
    if (ok) done();
    else stream.once('drain', done);
  });
}

/** Formats the findings summary: `masked 3 secrets: github-pat ×2, password ×1`. */
export function formatMaskSummary(counts: Map<string, number>): string {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 'flightlog mask: no secrets found\n';
  const parts = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ×${n}`);
  return `flightlog mask: masked ${total} secret${total === 1 ? '' : 's'}: ${parts.join(', ')}\n`;
}

/** Streams `input` to `output` masked; returns the exit code (0, or 1 if reading or writing failed). */
export async function runMaskCommand(io: MaskCommandIo): Promise<number> {
  const counts = new Map<string, number>();
  let pending = '';
  const stream = createStreamMasker(io.masker, {
    onText: (t) => {
      pending += t;
    },
    onHits: (hits) => {
      for (const h of hits) counts.set(h.kind, (counts.get(h.kind) ?? 0) + 1);
    },
    // a file is masked as a whole: hold across slow reads rather than flush on a timer
    idleMs: 0,
  });
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of io.input) {
      stream.write(typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
      const out = pending;
      pending = '';
      await writeAll(io.output, out);
    }
    stream.write(decoder.end());
    stream.end();
    await writeAll(io.output, pending);
    pending = '';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    io.stderr.write(`flightlog mask: ${code === 'EPIPE' ? 'output closed' : 'could not read or write the stream'}${code && code !== 'EPIPE' ? ` (${code})` : ''}\n`);
    return 1;
  }
  io.stderr.write(formatMaskSummary(counts));
  return 0;
}
