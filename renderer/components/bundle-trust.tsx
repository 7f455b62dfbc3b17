/**
 * Opened bundles and the one verdict each carries: the banner and every session's badge read the
 * same `BundleStatus.trust`, so a tampered bundle is red everywhere, an intact bundle from an
 * unknown key is amber with "Trust this key…", and green means a signer the user trusts.
 */
import { useEffect, useState } from 'react';
import type { BundleStatus, BundleTrust, SessionDetail } from '../../gateway/common/api-types';
import { api, trustBundleKey } from '../api';

const CHANGED = 'flightlog-bundles-changed';

/** The opened bundles' statuses, refreshed when a key is trusted. */
export function useBundles(): BundleStatus[] | null {
  const [bundles, setBundles] = useState<BundleStatus[] | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api.status().then(
        (s) => live && setBundles(s.bundles ?? null),
        () => undefined,
      );
    load();
    window.addEventListener(CHANGED, load);
    return () => {
      live = false;
      window.removeEventListener(CHANGED, load);
    };
  }, []);
  return bundles;
}

function signerLabel(b: BundleStatus): string {
  return b.trust === 'trusted' ? `${b.trustedAs ?? 'a trusted key'} (${b.signer ?? ''})` : (b.signer ?? 'no key');
}

const MARK: Record<BundleTrust, string> = { trusted: '✓', unknown: '⚠', tampered: '✗' };

export function BundleBanner({ bundles, onChanged }: { bundles: BundleStatus[]; onChanged: () => void }) {
  const [confirming, setConfirming] = useState<BundleStatus | null>(null);
  return (
    <div className="bundle-banner" data-testid="bundle-banner">
      <b>Read-only: opened bundle{bundles.length === 1 ? '' : 's'}</b>
      {bundles.map((b) => (
        <span key={b.file} className={`bundle-${b.trust}`} title={b.message} data-testid="bundle-verdict" data-trust={b.trust}>
          {MARK[b.trust]} {b.file}:{' '}
          {b.trust === 'trusted' && `verified, ${b.sessions} sessions, signed by ${signerLabel(b)}`}
          {b.trust === 'unknown' && (
            <>
              intact, {b.sessions} sessions, signed by an unknown key <span className="mono">{b.signer}</span>{' '}
              <button className="btn small" data-testid="trust-key" onClick={() => setConfirming(b)}>
                Trust this key…
              </button>
            </>
          )}
          {b.trust === 'tampered' && b.message}
        </span>
      ))}
      {confirming && (
        <TrustDialog
          bundle={confirming}
          onClose={(changed) => {
            setConfirming(null);
            if (changed) {
              window.dispatchEvent(new Event(CHANGED));
              onChanged();
            }
          }}
        />
      )}
    </div>
  );
}

function TrustDialog({ bundle, onClose }: { bundle: BundleStatus; onClose: (changed: boolean) => void }) {
  const [name, setName] = useState(bundle.file.replace(/\.flightlog$/i, '').replace(/[^A-Za-z0-9 ._@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50) + ' signer');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = () => {
    setBusy(true);
    trustBundleKey({ file: bundle.file, fingerprint: bundle.signer ?? '', name }).then(
      () => onClose(true),
      (e: unknown) => {
        setBusy(false);
        setError(e instanceof Error ? e.message : String(e));
      },
    );
  };
  return (
    <div className="modal-backdrop" onClick={() => onClose(false)}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="trust-title" data-testid="trust-dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id="trust-title">Trust the key that signed {bundle.file}?</h2>
        <p>Bundles signed by this key will show as verified in green. Compare the fingerprint with the sender’s before you trust it (theirs is <code>SHA256:</code> of their gateway’s <code>gateway-key.pub.pem</code>, as <code>flightlog verify</code> prints it).</p>
        <p className="mono fingerprint" data-testid="trust-fingerprint">
          {bundle.signer}
        </p>
        <label>
          Name{' '}
          <input value={name} onChange={(e) => setName(e.target.value)} data-testid="trust-name" maxLength={63} autoFocus />
        </label>
        {error && (
          <div className="error-line" role="alert">
            {error}
          </div>
        )}
        <div className="modal-actions">
          <button className="btn" onClick={() => onClose(false)}>
            Cancel
          </button>
          <button className="btn primary" disabled={busy || !name.trim()} onClick={submit} data-testid="trust-confirm">
            Trust this key
          </button>
        </div>
      </div>
    </div>
  );
}

/** A session imported from a bundle: its one badge, from its bundle's verdict. */
export function BundleSessionBadge({ meta, bundles }: { meta: SessionDetail['meta']; bundles: BundleStatus[] | null }) {
  const b = meta && typeof meta === 'object' && !Array.isArray(meta) ? meta.bundle : null;
  if (!b || typeof b !== 'object' || Array.isArray(b)) return null;
  const file = String(b.file ?? '');
  const status = bundles?.find((x) => x.file === file);
  // until the status arrives, the verdict stored at import (never greener than it)
  const trust: BundleTrust = status?.trust ?? (b.verified !== true ? 'tampered' : b.trusted === true ? 'trusted' : 'unknown');
  const text =
    trust === 'trusted'
      ? `✓ imported, verified · signed by ${status?.trustedAs ?? String(b.trustedAs ?? '')}`
      : trust === 'unknown'
        ? `⚠ imported, intact · unknown signer ${status?.signer ?? String(b.signer ?? '')}`
        : '✗ imported, NOT verified';
  return (
    <span className={`tag bundle-tag-${trust}`} title={status?.message ?? String(b.message ?? '')} data-testid="bundle-badge" data-trust={trust}>
      {text} · {file}
    </span>
  );
}

/** True when a session came from an opened bundle: its badge is the bundle's verdict, not the store's seal. */
export function isBundleSession(meta: SessionDetail['meta']): boolean {
  const b = meta && typeof meta === 'object' && !Array.isArray(meta) ? meta.bundle : null;
  return !!b && typeof b === 'object' && !Array.isArray(b);
}
