import { FlightlogError } from '../core/errors';

/** The upstream presented a host key other than the pinned one: the gateway refuses to log in. */
export class HostKeyChangedError extends FlightlogError {
  constructor(
    readonly connection: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      'E_SSH_HOST_KEY_CHANGED',
      `flightlog: the host key of connection '${connection}' has changed: pinned ${expected}, upstream presented ${actual}; refusing to connect (if the change is expected, update upstream.hostKey or remove the entry from ssh/known_hosts.json in the data dir)`,
    );
    this.name = 'HostKeyChangedError';
  }
}

/** The gateway could not log in to the upstream host (network, credentials, protocol). */
export class UpstreamConnectError extends FlightlogError {
  constructor(readonly connection: string, reason: string) {
    super('E_SSH_UPSTREAM', `flightlog: cannot reach connection '${connection}' upstream: ${reason}`);
    this.name = 'UpstreamConnectError';
  }
}
