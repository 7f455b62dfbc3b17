/** The one line that routes an agent through the gateway, with a Copy button. */
import { useEffect, useRef, useState } from 'react';
import type { SettingsSnapshot } from '../../../gateway/common/api-types';

export function runLine(snapshot: SettingsSnapshot, identity: string, agent: string): string {
  return `${snapshot.runCommand} --identity ${identity || 'NAME'} -- ${agent.trim() || '<agent>'}`;
}

export function RunSection({ snapshot }: { snapshot: SettingsSnapshot }) {
  const active = snapshot.identities.filter((i) => !i.revokedAt).map((i) => i.name);
  const [identity, setIdentity] = useState(active[0] ?? '');
  const [agent, setAgent] = useState('claude');
  useEffect(() => {
    if (!active.includes(identity)) setIdentity(active[0] ?? '');
  }, [active.join(',')]);
  const reachable = snapshot.listeners.filter((l) => l.address && l.identities.includes(identity));
  return (
    <section className="settings-card" id="settings-run" data-testid="run-section">
      <h3>Route an agent</h3>
      <div className="inline-form">
        <select value={identity} onChange={(e) => setIdentity(e.target.value)} data-testid="run-identity">
          {active.length === 0 && <option value="">no identity yet</option>}
          {active.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <input value={agent} onChange={(e) => setAgent(e.target.value)} placeholder="the agent's command" data-testid="run-agent" spellCheck={false} />
      </div>
      <CopyLine text={runLine(snapshot, identity, agent)} testId="run-command" />
      <RunHelp snapshot={snapshot} />
      <p className="muted small">
        {reachable.length
          ? `It reaches ${reachable.map((l) => l.connection).join(', ')} through the gateway (PGHOST, an ssh config, the model API base URLs…), all grouped under one run.`
          : identity
            ? `No running connection allows "${identity}" yet: add it to a connection's identities.`
            : 'Create an identity first.'}
      </p>
    </section>
  );
}

/** Where the line works as pasted, the same line for any directory, and how to type plain `flightlog`. */
function RunHelp({ snapshot }: { snapshot: SettingsSnapshot }) {
  const h = snapshot.runHelp;
  if (!h) return null;
  return (
    <p className="muted small run-help" data-testid="run-help" data-via={h.via}>
      {h.via === 'npx' && (
        <>
          Paste it in a shell in <code>{h.cwd}</code>; from any other directory: <code data-testid="run-anywhere">{h.anywhere} …</code>{' '}
        </>
      )}
      {h.via === 'node' && <>This install is not on your PATH, so the line names it by its path and works from any directory. </>}
      {h.via !== 'path' && <>· To type plain <code>flightlog</code>, {h.onPath}.</>}
    </p>
  );
}

/** A one-line value with a Copy button; falls back to selecting the text where the clipboard is not allowed. */
export function CopyLine({ text, testId }: { text: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      const sel = window.getSelection();
      if (sel && ref.current) sel.selectAllChildren(ref.current);
    }
  };
  return (
    <div className="copy-line">
      <code ref={ref} data-testid={testId}>
        {text}
      </code>
      <button className="btn small" type="button" onClick={() => void copy()} data-testid={`${testId}-copy`}>
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}
