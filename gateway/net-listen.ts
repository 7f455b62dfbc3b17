import type { AddressInfo, Server } from 'node:net';

/**
 * Binds a listener's server to its configured address and resolves with where it is bound (port 0
 * gives a free port); a bind error (port in use, address not local) rejects instead of being
 * thrown later as an unhandled 'error' event.
 */
export function listenOn(server: Server, listen: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
