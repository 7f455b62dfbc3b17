/** The masking engine: rules, known and registered secrets, structural and stream masking. */
export { createMasker } from './engine';
export type { MaskerOptions, MaskingEngine, MaskSpan } from './engine';
export { digestSecret, fingerprintOf, secretForms } from './known-secrets';
export type { KnownSecretDigest, SecretForm } from './known-secrets';
export { createStreamMasker } from './stream';
export type { StreamMasker, StreamMaskerOptions } from './stream';
export { runMaskCommand, formatMaskSummary } from './mask-command';
export type { MaskCommandIo } from './mask-command';
export { classifySecretKey } from './keys';
export type { KeyClass } from './keys';
