/** Signed session bundles and exports for other tools: the API the CLI, control API and UI use. */
export { exportBundle, sessionsOfRun, type ExportOptions, type ExportResult } from './export';
export { verifyBundle, type BundleProblem, type TrustedKey, type VerifyOptions, type VerifyReport } from './verify';
export { openBundles, openMemoryDb, type BundleOrigin, type OpenBundlesOptions, type OpenedBundleReport } from './open';
export { addTrustedKey, loadTrustedKeys, ownGatewayKey, removeTrustedKey, trustFile } from './trust-store';
export { exportAsciicast } from './asciicast';
export { exportHar, harEntry, type HarEntry } from './har';
export { exportJsonl, type JsonlEvent } from './jsonl';
export { BundleError } from './errors';
export { DEFAULT_LIMITS, type BundleLimits, type Manifest } from './format';
