/** What a kubectl command changed: the object before and after, as a Monaco diff (noise already dropped by the gateway). */
import type { CommandView } from '../../gateway/common/api-types';
import { DiffView } from './monaco';
import { isRecord, prettyJson } from '../format';

export function KubeChange({ command }: { command: CommandView }) {
  const r = isRecord(command.result) ? command.result : null;
  if (!r || !('before' in r || 'after' in r)) return null;
  const before = r.before === null || r.before === undefined ? '' : prettyJson(r.before);
  const after = r.after === null || r.after === undefined ? '' : prettyJson(r.after);
  const note = typeof r.beforeNote === 'string' ? r.beforeNote : null;
  return (
    <section className="section" data-testid="kube-change">
      <h3>
        What changed
        <span className="section-right muted">
          {before === '' ? `before: none${note ? ` (${note})` : ''}` : 'before'} → {after === '' ? 'after: gone' : 'after'}
        </span>
      </h3>
      <DiffView original={before} modified={after} language="json" height={420} />
    </section>
  );
}
