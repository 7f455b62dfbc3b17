/**
 * How long the fuzz properties run. `npm test` runs a short, seeded, deterministic budget;
 * `npm run fuzz` (or FLIGHTLOG_FUZZ_RUNS=N / FLIGHTLOG_FUZZ_SEED=S) runs longer with a fresh seed.
 * fast-check prints the seed and the shrunk counterexample of a failure, so any find replays
 * with `FLIGHTLOG_FUZZ_SEED=<seed> npm run fuzz`.
 */
import type { Parameters } from 'fast-check';

/** The seed of the short budget in `npm test`: fixed, so the suite is deterministic. */
const DEFAULT_SEED = 20261129;
/** `npm run fuzz` multiplies every property's short budget by this unless FLIGHTLOG_FUZZ_RUNS is set. */
const LONG_SCALE = 50;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got "${v}"`);
  return n;
}

export const longRun = process.env.FLIGHTLOG_FUZZ_LONG === '1' || envInt('FLIGHTLOG_FUZZ_RUNS') !== undefined;

/** fast-check parameters for a property whose short budget is `shortRuns` runs. */
export function budget<T>(shortRuns: number): Parameters<T> {
  const runs = envInt('FLIGHTLOG_FUZZ_RUNS') ?? (longRun ? shortRuns * LONG_SCALE : shortRuns);
  const seed = envInt('FLIGHTLOG_FUZZ_SEED') ?? (longRun ? (Date.now() ^ (process.pid << 8)) | 0 : DEFAULT_SEED);
  return { numRuns: runs, seed };
}

/** Fails a promise that does not settle in time: a hang is a finding, not a stuck suite. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
