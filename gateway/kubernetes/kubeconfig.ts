/**
 * The kubeconfig `flightlog run` gives an agent: one cluster per kubernetes connection, reached at
 * the gateway over HTTPS and trusted through the gateway's own certificate, and the run's token
 * as the user's bearer token. Pure: the caller reads the certificate and writes the file.
 */
import { stringify } from 'yaml';

export interface KubeconfigCluster {
  /** the connection name: the cluster and context name */
  name: string;
  /** host:port the listener is bound to */
  address: string;
}

export function agentKubeconfig(clusters: KubeconfigCluster[], identity: string, token: string, caPem: string | null): string {
  const server = (address: string): string => {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '');
    // the certificate names 127.0.0.1 and localhost; a wildcard bind is reached on loopback
    const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `https://${h}:${address.slice(i + 1)}`;
  };
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: caPem ? { server: server(c.address), 'certificate-authority-data': Buffer.from(caPem, 'utf8').toString('base64') } : { server: server(c.address) },
    })),
    users: [{ name: identity, user: { token } }],
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: identity } })),
    'current-context': clusters[0]?.name ?? '',
  };
  return stringify(doc);
}
