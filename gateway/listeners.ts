import type { StartListener } from './core/listener';
import type { Protocol } from './core/types';
import { startPostgresListener } from './postgres/listener';
import { startSshListener } from './ssh/listener';
import { startHttpListener } from './http/listener';
import { startKubernetesListener } from './kubernetes/listener';

/**
 * The protocol listeners this build has. A protocol mapped to null is valid in the config
 * but has no listener yet: the gateway says so and starts the others.
 */
const LISTENERS: Record<Protocol, StartListener | null> = {
  postgres: startPostgresListener,
  ssh: startSshListener,
  http: startHttpListener,
  kubernetes: startKubernetesListener,
};

export function listenerFor(protocol: Protocol): StartListener | null {
  return LISTENERS[protocol];
}
