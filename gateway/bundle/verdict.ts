/**
 * The one verdict a viewer shows for an opened bundle, from its verification report: every badge
 * (the banner, each session's) reads this, so a tampered bundle never wears a green mark anywhere
 * and an intact bundle from a key nobody trusted is never shown as if it were.
 */
import * as path from 'node:path';
import type { BundleStatus, BundleTrust } from '../common/api-types';
import type { VerifyReport } from './verify';

/** tampered: a check failed; unknown: intact, but its key is not in the trust store; trusted: both. */
export function bundleTrust(r: Pick<VerifyReport, 'ok' | 'signer'>): BundleTrust {
  if (!r.ok) return 'tampered';
  return r.signer.trusted ? 'trusted' : 'unknown';
}

/** A report as the control API's status lists it. */
export function bundleStatus(r: VerifyReport & { imported: string[] }): BundleStatus {
  return {
    file: path.basename(r.file),
    verified: r.ok,
    signer: r.signer.fingerprint,
    trusted: r.signer.trusted,
    trustedAs: r.signer.name,
    sessions: r.imported.length,
    events: r.events,
    message: r.message,
    trust: bundleTrust(r),
  };
}
