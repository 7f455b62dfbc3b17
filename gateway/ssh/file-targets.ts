import type { CommandStart, Json } from '../common/types';
import { fileWrites } from '../policy/file-writes';

/**
 * Recorder hook: an SSH shell or exec line that writes files touches `file:<connection>:<path>`
 * for each, so `flightlog blame file:web-1:/etc/nginx/nginx.conf` finds `sed -i` and `>` edits,
 * not just SFTP. Runs on the masked text: a target never holds what masking removed.
 */
export function shellFileTouches(session: { connection: string; protocol: string }, start: CommandStart): { targets: string[]; detail: Record<string, Json> } | null {
  if (session.protocol !== 'ssh' || (start.kind !== 'shell' && start.kind !== 'exec')) return null;
  if (start.text.length > 64 * 1024) return null;
  const files = fileWrites(start.text);
  if (files.length === 0) return null;
  return {
    targets: files.map((f) => `file:${session.connection}:${f.path}`),
    detail: { files: files.map((f) => ({ path: f.path, op: f.op })) },
  };
}
