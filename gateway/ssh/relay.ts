import type { Readable, Writable } from 'node:stream';

/**
 * Copies src to dst with backpressure (pause on a full dst, resume on drain) without ending dst:
 * the SSH channel's exit status must go out before its EOF/close, so ending is the caller's job.
 * `tap` sees every chunk as it passes; `transform` may rewrite it (live masking).
 */
export function relay(
  src: Readable,
  dst: Writable,
  tap?: (chunk: Buffer) => void,
  transform?: (chunk: Buffer) => Buffer,
): void {
  let waiting = false;
  const onDrain = (): void => {
    waiting = false;
    src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    tap?.(chunk);
    const out = transform ? transform(chunk) : chunk;
    if (out.length === 0 || dst.destroyed || dst.writableEnded) return;
    if (!dst.write(out) && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  });
}

/** Resolves once everything written to w has been handed to the transport (or w is gone). */
export function drained(w: Writable): Promise<void> {
  if (w.writableLength === 0 || w.destroyed || w.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}
