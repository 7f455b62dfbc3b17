import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Gateway } from '../gateway';
import type { FlightlogConfig } from '../common/config-schema';
import { FlightlogError } from '../core/errors';
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

const PORT_FILE = 'ui-port';

/** Is host:port free to listen on right now? */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * The control API (and web UI) port of this data dir's last run, when the config leaves it open
 * and it is free: a tab left open on the old URL finds the gateway again after a restart (a page
 * cannot learn a new port by itself). Any other case keeps the config as it is.
 */
export async function withStablePort(config: FlightlogConfig, dataDir: string): Promise<FlightlogConfig> {
  if (config.controlApi.port !== 0) return config;
  let last: number;
  try {
    last = Number(fs.readFileSync(path.join(dataDir, PORT_FILE), 'utf8').trim());
  } catch {
    return config;
  }
  if (!Number.isInteger(last) || last < 1024 || last > 65535) return config;
  if (!(await portFree(config.controlApi.host, last))) return config;
  return { ...config, controlApi: { ...config.controlApi, port: last } };
}

/** Starts the gateway on the data dir's last port when it can, else on a new one (which is then remembered). */
export async function startWithStablePort(start: (config: FlightlogConfig) => Promise<Gateway>, config: FlightlogConfig, dataDir: string): Promise<Gateway> {
  const stable = await withStablePort(config, dataDir);
  let gateway: Gateway;
  try {
    gateway = await start(stable);
  } catch (err) {
    // taken between the probe and the bind: a new port beats no gateway
    if (stable === config || !(err instanceof FlightlogError) || err.code !== 'E_ADDR_IN_USE' || !/^control API:/.test(err.message)) throw err;
    gateway = await start(config);
  }
  try {
    fs.writeFileSync(path.join(dataDir, PORT_FILE), `${new URL(gateway.control.url).port}\n`, { mode: 0o600 });
  } catch {
    // a read-only data dir only costs the stable URL
  }
  return gateway;
}
