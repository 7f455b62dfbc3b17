/** Logs in to the connection's upstream host with the gateway's credentials, pinning its host key. */
// first: ssh2's cipher module must load with pooled padding (see the module)
import './ssh2-padding';
import { Client, type ConnectConfig } from 'ssh2';
import type { SshUpstream } from '../common/config-schema';
import { HostKeyChangedError, UpstreamConnectError } from './errors';
import { fingerprint, formatPinnedKey, KnownHosts, parsePinnedKey } from './host-keys';
import { coalesceWrites } from './ssh2-internals';

export interface UpstreamLogin {
  client: Client;
  hostKey: { fingerprint: string; key: string; source: 'config' | 'pinned' | 'learned' };
}

export interface UpstreamOptions {
  connection: string;
  upstream: SshUpstream;
  secrets: Record<string, string>;
  dataDir: string;
  readyTimeoutMs?: number;
}

export function connectUpstream(opts: UpstreamOptions): Promise<UpstreamLogin> {
  const known = new KnownHosts(opts.dataDir);
  const configured = opts.upstream.hostKey ? parsePinnedKey(opts.upstream.hostKey) : null;
  const pinned = configured ?? known.get(opts.connection);
  const source: UpstreamLogin['hostKey']['source'] = configured ? 'config' : pinned ? 'pinned' : 'learned';
  let seen: Buffer | null = null;
  let mismatch: HostKeyChangedError | null = null;

  return new Promise((resolve, reject) => {
    const client = new Client();
    const config: ConnectConfig = {
      host: opts.upstream.host,
      port: opts.upstream.port,
      username: opts.upstream.user,
      readyTimeout: opts.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer): boolean => {
        seen = Buffer.from(key);
        if (pinned && !pinned.equals(seen)) {
          mismatch = new HostKeyChangedError(opts.connection, fingerprint(pinned), fingerprint(seen));
          return false;
        }
        return true;
      },
    };
    if (opts.secrets.privateKey) config.privateKey = opts.secrets.privateKey;
    if (opts.secrets.password) config.password = opts.secrets.password;
    let settled = false;
    client.once('ready', () => {
      settled = true;
      const key = seen as Buffer | null;
      if (!key) {
        client.end();
        return reject(new UpstreamConnectError(opts.connection, 'no host key was presented'));
      }
      // First use: remember the key so a later change is caught (trust on first use, like OpenSSH).
      if (source === 'learned') known.set(opts.connection, key);
      resolve({ client, hostKey: { fingerprint: fingerprint(key), key: formatPinnedKey(key), source } });
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      if (mismatch) return reject(mismatch);
      const reason =
        err.level === 'client-authentication'
          ? `the upstream host refused the gateway's credentials for user '${opts.upstream.user}'`
          : err.message.replace(/\s+/g, ' ').slice(0, 200);
      reject(new UpstreamConnectError(opts.connection, reason));
    });
    client.connect(config);
    // As on the agent's side: no Nagle delay on small packets.
    client.setNoDelay(true);
    coalesceWrites(client);
  });
}
