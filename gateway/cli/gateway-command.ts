import { VERSION } from '../core/version';
import * as path from 'node:path';
import { resolveDataDir } from '../core/paths';
import { Gateway } from '../gateway';
import { findConfig, type Io } from './main';
import { printListeners, serveUntilSignal, startWithStablePort } from './serve';

/** `flightlog gateway`: runs until SIGINT/SIGTERM, then closes and seals every open session. */
export async function runGatewayCommand(opts: { configFile?: string; dataDir?: string }, io: Io): Promise<number> {
  const dataDir = resolveDataDir(opts.dataDir, io.env);
  const config = findConfig(opts.configFile, dataDir);
  const gateway = await startWithStablePort((c) => Gateway.start({ config: c, dataDir, env: io.env }), config, dataDir);
  const out = io.stdout;
  out.write(`flightlog gateway ${VERSION}\n`);
  out.write(`data dir   ${dataDir}\n`);
  out.write(`config     ${config.file ?? '(none)'}\n`);
  if (config.connections.length === 0) {
    out.write(`no connections configured: copy ${path.join('resources', 'sample-config', 'flightlog.yaml')} and pass --config\n`);
  }
  printListeners(gateway, io);
  out.write(`control    ${gateway.control.url} (token in ${path.join(dataDir, 'control-token')})\n`);
  out.write('ready\n');

  return serveUntilSignal(gateway, io);
}
