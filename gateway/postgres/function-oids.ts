/**
 * Names of the built-in functions clients call over the fastpath FunctionCall message. libpq's
 * large-object API is the one real user: it looks these up in pg_proc once, and built-in oids
 * are fixed in the catalog (src/include/catalog/pg_proc.dat), so a table is enough.
 */
const BUILTIN_FUNCTIONS: ReadonlyMap<number, string> = new Map([
  [715, 'lo_create'],
  [764, 'lo_import'],
  [765, 'lo_export'],
  [767, 'lo_import'],
  [952, 'lo_open'],
  [953, 'lo_close'],
  [954, 'loread'],
  [955, 'lowrite'],
  [956, 'lo_lseek'],
  [957, 'lo_creat'],
  [958, 'lo_tell'],
  [964, 'lo_unlink'],
  [1004, 'lo_truncate'],
  [3170, 'lo_lseek64'],
  [3171, 'lo_tell64'],
  [3172, 'lo_truncate64'],
  [3457, 'lo_from_bytea'],
  [3458, 'lo_get'],
  [3459, 'lo_get'],
  [3460, 'lo_put'],
]);

/** The recorded text of a fastpath call: `-- function call lo_open (oid 952)`. */
export function functionCallText(oid: number): string {
  const name = BUILTIN_FUNCTIONS.get(oid);
  return name ? `-- function call ${name} (oid ${oid})` : `-- function call oid ${oid}`;
}
