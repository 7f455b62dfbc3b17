/** A one-line progress bar for long exports, drawn only on a terminal. */
export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

/** Returns an onProgress callback (redrawn at most every 100 ms) and a function that clears the line. */
export function progressBar(stream: ProgressStream, label: string): { update: (done: number, total: number) => void; end: () => void } {
  if (!stream.isTTY) return { update: () => undefined, end: () => undefined };
  let lastDraw = 0;
  let drawn = false;
  const draw = (done: number, total: number): void => {
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 30));
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    stream.write(`\r${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${Math.floor(frac * 100)}% ${done}/${total} events\x1b[K`);
    drawn = true;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      draw(done, total);
    },
    end() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
