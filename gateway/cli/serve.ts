import type { Gateway } from '../gateway';
import type { Io } from './main';

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once. */
export function untilSignal(io: Io): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const again = () => {
        io.stderr.write('flightlog: second signal, exiting without waiting\n');
        process.exit(130);
      };
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Prints where each listener is, the way `gateway` and `ui` both do. */
export function printListeners(gateway: Gateway, io: Io): void {
  for (const l of gateway.status().listeners) {
    io.stdout.write(`listening  ${l.connection} (${l.protocol}) ${l.address ?? `not started: ${l.error}`}\n`);
  }
}

/** Runs a started gateway until a signal, then closes and seals every open session. */
export async function serveUntilSignal(gateway: Gateway, io: Io, after?: () => void): Promise<number> {
  const sig = await untilSignal(io);
  io.stderr.write(`flightlog: ${sig}, closing and sealing open sessions\n`);
  try {
    await gateway.stop(`gateway stopped (${sig})`);
    after?.();
    return 0;
  } catch {
    return 1;
  }
}
