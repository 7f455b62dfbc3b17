import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlightlogError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { VERSION } from '../core/version';
import { openBundles } from '../bundle';
import { startControlApi } from '../control-api/server';
import { createUiRoutes, defaultRendererDir } from '../control-api/static';
import type { BundleStatus, GatewayStatus, TrustBundleKeyRequest, TrustBundleKeyResult } from '../common/api-types';
import { bundleStatus } from '../bundle/verdict';
import { trustBundleSigner } from '../bundle/trust-store';
import { verifyBundle } from '../bundle/verify';
import { trustedKeysFor } from './bundle-commands';
import { untilSignal } from './serve';
import { uiUrl } from './ui-command';
import type { Io } from './main';

/**
 * `flightlog open FILE…`: verifies each bundle, imports it into an in-memory store (never
 * opening a database from the bundle) and serves it read-only through the same UI and API.
 */
export async function runOpenCommand(opts: { files: string[]; dataDir?: string }, io: Io): Promise<number> {
  if (opts.files.length === 0) throw new FlightlogError('E_USAGE', 'open needs at least one bundle (usage: flightlog open FILE…)', 2);
  for (const f of opts.files) {
    if (!fs.existsSync(f)) throw new FlightlogError('E_FILE', `cannot read ${f}: ENOENT`);
  }
  const dataDir = resolveDataDir(opts.dataDir, io.env);
  const { db, reports } = await openBundles(opts.files.map((f) => path.resolve(f)), { trustedKeys: trustedKeysFor(dataDir) });
  for (const r of reports) io.stderr.write(`${path.basename(r.file)}: ${r.message}\n`);
  const readable = reports.filter((r) => r.readable);
  if (readable.length === 0) {
    db.close();
    throw new FlightlogError('E_BUNDLE', 'none of the files could be read as a bundle');
  }
  let bundles: BundleStatus[] = readable.map(bundleStatus);
  /** "Trust this key…": only an intact bundle's unknown signer; then every bundle is verified again */
  const trustBundleKey = async (req: TrustBundleKeyRequest): Promise<TrustBundleKeyResult> => {
    const i = bundles.findIndex((b) => b.file === req.file);
    if (i < 0) throw new FlightlogError('E_NOT_FOUND', `no opened bundle "${req.file}"`);
    if (bundles[i].trust === 'tampered') throw new FlightlogError('E_BUNDLE', `${req.file} did not verify: its key cannot be trusted from it`);
    const k = await trustBundleSigner(dataDir, readable[i].file, req.fingerprint, req.name);
    const keys = trustedKeysFor(dataDir);
    bundles = await Promise.all(readable.map(async (r) => bundleStatus({ ...(await verifyBundle(r.file, { trustedKeys: keys })), imported: r.imported })));
    return { trusted: { name: k.name, fingerprint: k.fingerprint }, bundles };
  };
  // A token of its own in a private temp dir: opening a bundle writes nothing to the data dir.
  const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-open-'));
  const routes = createUiRoutes({ db, rendererDir: defaultRendererDir(io.env) });
  const status = (): GatewayStatus => ({ version: VERSION, dataDir: '(opened bundles)', keyFingerprint: '', listeners: [], liveSessions: 0, bundles });
  const api = await startControlApi({ db, dataDir: tokenDir, host: '127.0.0.1', port: 0, status, trustBundleKey, extra: routes.extra });
  io.stdout.write(`flightlog open ${VERSION}: ${bundles.length} bundle${bundles.length === 1 ? '' : 's'}, read-only\n`);
  io.stdout.write(`ui         ${uiUrl(api.url, api.token)}\n`);
  io.stdout.write('ready\n');
  await untilSignal(io);
  await api.close();
  routes.close();
  db.close();
  fs.rmSync(tokenDir, { recursive: true, force: true });
  return reports.every((r) => r.ok) ? 0 : 1;
}
