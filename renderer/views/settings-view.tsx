/**
 * Settings: connections (a form per protocol, validated by the gateway with the config loader
 * itself and written back to flightlog.yaml), identities (a token shown once), and the one line
 * that routes an agent. Also the first-start onboarding shown while no connection exists. Each
 * card is its own file under settings/; this view composes them.
 */
import { useEffect, useState } from 'react';
import type { SettingsSnapshot } from '../../gateway/common/api-types';
import { announceSettingsChanged, settingsApi } from '../api';
import { Empty, ErrorLine, useLoad } from '../components/common';
import type { Route } from '../router';
import { ConnectionsSection } from './settings/connections-section';
import { GuardrailsSection } from './settings/guardrails-section';
import { IdentitiesSection } from './settings/identities-section';
import { RunSection } from './settings/run-section';
import './settings-view.css';

export { TestLine } from './settings/form-fields';
export { CopyLine } from './settings/run-section';
export { Onboarding } from './settings/onboarding';

export function SettingsView({ route }: { route: Route }) {
  const { value, error, reload } = useLoad(() => settingsApi.get(), []);
  const [snapshot, setSnapshot] = useState<SettingsSnapshot | null>(null);
  const focus = route.params.get('focus');
  useEffect(() => setSnapshot(value), [value]);
  useEffect(() => {
    if (!focus || !snapshot) return;
    document.getElementById(`settings-${focus}`)?.scrollIntoView({ block: 'start' });
  }, [focus, snapshot !== null]);

  const changed = (s?: SettingsSnapshot) => {
    if (s) setSnapshot(s);
    else reload();
    announceSettingsChanged();
  };
  if (error && !snapshot) return <ErrorLine error={error} />;
  if (!snapshot) return <Empty>loading…</Empty>;
  return (
    <div className="view settings-view" data-testid="settings">
      <div className="toolbar">
        <h2>Settings</h2>
        <span className="muted" data-testid="config-file">
          {snapshot.configExists ? 'config' : 'config (created on the first change)'}: <code>{snapshot.configFile}</code>
        </span>
      </div>
      <div className="settings-body">
        <ConnectionsSection snapshot={snapshot} onChanged={changed} openForm={focus === 'connection'} />
        <IdentitiesSection snapshot={snapshot} onChanged={() => changed()} />
        <GuardrailsSection />
        <RunSection snapshot={snapshot} />
      </div>
    </div>
  );
}
