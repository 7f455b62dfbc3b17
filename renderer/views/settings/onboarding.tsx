/** First-start onboarding, shown while no connection exists. */
import type { ReactNode } from 'react';
import type { GatewayStatus } from '../../../gateway/common/api-types';
import { settingsApi } from '../../api';
import { useLoad } from '../../components/common';
import { href, navigate } from '../../router';
import { runLine } from './run-section';

/** First start, no connections yet: three steps into Settings. */
export function Onboarding({ status }: { status: GatewayStatus }) {
  const { value } = useLoad(() => settingsApi.get(), [status.listeners.length]);
  const identity = value?.identities.find((i) => !i.revokedAt)?.name ?? null;
  const step = (n: number, done: boolean, title: string, body: ReactNode) => (
    <li className={`ob-step ${done ? 'done' : ''}`} data-testid={`onboarding-step-${n}`}>
      <span className="ob-num">{done ? '✓' : n}</span>
      <div>
        <div className="ob-title">{title}</div>
        <div className="muted">{body}</div>
      </div>
    </li>
  );
  return (
    <div className="onboarding" data-testid="onboarding">
      <div className="ob-head">
        <h2>Welcome to Flightlog</h2>
        <span className="muted">The gateway is running with no connections. Three steps and your agent's every query, command and model call is on the record.</span>
      </div>
      <ol className="ob-steps">
        {step(
          1,
          identity !== null,
          'Create an identity',
          <>
            Who the agent is to the gateway. <a href={href('settings', null, { focus: 'identity' })}>Create one in Settings</a>
            {identity && <> · done: {identity}</>}
          </>,
        )}
        {step(
          2,
          status.listeners.length > 0,
          'Add a connection',
          <>
            A database, SSH host or HTTP/model API, with the credentials the gateway injects (referenced, never stored).{' '}
            <a href={href('settings', null, { focus: 'connection' })} data-testid="onboarding-add-connection">
              Add one
            </a>
          </>,
        )}
        {step(
          3,
          false,
          'Run your agent',
          <>
            <code>{value ? runLine(value, identity ?? 'NAME', '<agent>') : 'flightlog run --identity NAME -- <agent>'}</code>
            {value?.runHelp?.via === 'npx' && <span data-testid="onboarding-run-where"> (in {value.runHelp.cwd})</span>}{' '}
            <a href={href('settings', null, { focus: 'run' })} onClick={(e) => (e.preventDefault(), navigate(href('settings', null, { focus: 'run' })))}>
              copy it
            </a>
          </>,
        )}
      </ol>
    </div>
  );
}
