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
  // A gone destination must not leave the source paused forever: drain it into the void.
  dst.once('close', () => {
    dst.off('drain', onDrain);
    waiting = false;
    src.resume();
  });
  src.on('data', (chunk: Buffer) => {
    tap?.(chunk);
    const out = transform ? transform(chunk) : chunk;
    if (out.length === 0 || dst.destroyed || dst.writableEnded || !dst.writable) return;
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
  // Not 'drain': Node emits it only after a write returned false. An empty write's callback
  // runs once every earlier chunk has been written out.
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      w.off('close', finish);
      resolve();
    };
    w.once('close', finish);
    w.write(Buffer.alloc(0), finish);
  });
}

/**
 * Resolves once r has delivered its last byte ('end'). Not on 'close': ssh2 emits a channel's
 * close while data may still wait in a paused stream.
 */
export function ended(r: Readable): Promise<void> {
  if (r.readableEnded || r.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    r.once('end', () => resolve());
    r.once('error', () => resolve());
  });
}
