import { VERSION } from '../core/version';
import * as path from 'node:path';
import { resolveDataDir } from '../core/paths';
import { Gateway } from '../gateway';
import { findConfig, type Io } from './main';

/** `flightlog gateway`: runs until SIGINT/SIGTERM, then closes and seals every open session. */
export async function runGatewayCommand(opts: { configFile?: string; dataDir?: string }, io: Io): Promise<number> {
  const dataDir = resolveDataDir(opts.dataDir, io.env);
  const config = findConfig(opts.configFile, dataDir);
  const gateway = await Gateway.start({ config, dataDir, env: io.env });
  const out = io.stdout;
  out.write(`flightlog gateway ${VERSION}\n`);
  out.write(`data dir   ${dataDir}\n`);
  out.write(`config     ${config.file ?? '(none)'}\n`);
  if (config.connections.length === 0) {
    out.write(`no connections configured: copy ${path.join('resources', 'sample-config', 'flightlog.yaml')} and pass --config\n`);
  }
  for (const l of gateway.status().listeners) {
    out.write(`listening  ${l.connection} (${l.protocol}) ${l.address ?? `not started: ${l.error}`}\n`);
  }
  out.write(`control    ${gateway.control.url} (token in ${path.join(dataDir, 'control-token')})\n`);
  out.write('ready\n');

  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        io.stderr.write('flightlog: second signal, exiting without waiting\n');
        process.exit(130);
      }
      signalled = true;
      io.stderr.write(`flightlog: ${sig}, closing and sealing open sessions\n`);
      gateway.stop(`gateway stopped (${sig})`).then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(0);
        },
        () => resolve(1),
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
