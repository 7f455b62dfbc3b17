import type { Readable, Writable } from 'node:stream';

/**
 * Copies src to dst with backpressure (pause on a full dst, resume on drain) without ending dst:
 * the SSH channel's exit status must go out before its EOF/close, so ending is the caller's job.
 * `tap` sees every chunk as it passes; `transform` may rewrite it (live masking). `gate` may hold
 * a chunk (and everything after it) until its promise settles: true forwards it, false drops it,
 * a buffer is forwarded in its place.
 */
export function relay(
  src: Readable,
  dst: Writable,
  tap?: (chunk: Buffer) => void,
  transform?: (chunk: Buffer) => Buffer,
  gate?: (chunk: Buffer) => Promise<boolean | Buffer> | null,
): { idle(): Promise<void> } {
  let waiting = false;
  let holding = false;
  let queued: Buffer[] = [];
  let idleWaiters: Array<() => void> = [];
  const onDrain = (): void => {
    waiting = false;
    if (!holding) src.resume();
  };
  // A gone destination must not leave the source paused forever: drain it into the void.
  dst.once('close', () => {
    dst.off('drain', onDrain);
    waiting = false;
    src.resume();
  });
  const write = (chunk: Buffer): void => {
    const out = transform ? transform(chunk) : chunk;
    if (out.length === 0 || dst.destroyed || dst.writableEnded || !dst.writable) return;
    if (!dst.write(out) && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  };
  const onChunk = (chunk: Buffer): void => {
    if (holding) {
      queued.push(chunk);
      return;
    }
    tap?.(chunk);
    const hold = gate?.(chunk);
    if (!hold) return write(chunk);
    holding = true;
    src.pause();
    void hold.then((ok) => {
      holding = false;
      if (ok) write(ok === true ? chunk : ok);
      const rest = queued;
      queued = [];
      for (let i = 0; i < rest.length; i++) {
        onChunk(rest[i]);
        if (holding) {
          queued.push(...rest.slice(i + 1));
          return;
        }
      }
      if (!waiting) src.resume();
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    });
  };
  src.on('data', onChunk);
  return {
    /** Resolves once no chunk is held by the gate: an EOF must not overtake held input. */
    idle: () => (holding ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
  };
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
