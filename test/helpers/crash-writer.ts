/**
 * Child process for the crash test: appends events as fast as it can and reports on stdout
 * every event the recorder has acknowledged (written to the record journal). The parent kills it
 * with SIGKILL. argv[3], if given, is the writer thread's interval between loads into the store.
 */
import { openDb } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey } from '../../gateway/store/chain';
import { createMasker } from '../../gateway/masking';

const dataDir = process.argv[2];
const db = openDb(dataDir);
const key = ensureGatewayKey(dataDir);
const loadIntervalMs = process.argv[3] ? Number(process.argv[3]) : undefined;
const rec = new Recorder(db, { masker: createMasker({ fingerprintKey: ensureFingerprintKey(dataDir) }), signingKey: key.privateKey, keyFingerprint: key.fingerprint, loadIntervalMs });
const session = rec.openSession({ connection: 'crash', protocol: 'postgres', identity: 'agent' });
process.stdout.write(`session ${session.id}\n`);

function burst(): void {
  let last = 0;
  for (let i = 0; i < 200; i++) last = session.event('bytes', 'upstream→client', { payload: 'x'.repeat(200), i });
  session.flushed().then(() => {
    process.stdout.write(`acked ${last}\n`);
    burst();
  });
}
burst();
