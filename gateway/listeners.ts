import type { StartListener } from './core/listener';
import type { Protocol } from './core/types';

/**
 * The protocol listeners this build has. A protocol mapped to null is valid in the config
 * but has no listener yet: the gateway says so and starts the others.
 */
export function listenerFor(protocol: Protocol): StartListener | null {
  const table: Record<Protocol, [string, string] | null> = {
    postgres: ['./postgres/listener', 'startPostgresListener'],
    ssh: ['./ssh/listener', 'startSshListener'],
    http: ['./http/listener', 'startHttpListener'],
    kubernetes: null,
  };
  const entry = table[protocol];
  if (!entry) return null;
  try {
    const mod = require(entry[0]) as Record<string, StartListener | undefined>;
    return mod[entry[1]] ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(entry[0].slice(2))) return null;
    throw err;
  }
}
