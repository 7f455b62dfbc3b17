import type { AddressInfo, Server, Socket } from 'node:net';

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

/**
 * Closes an HTTP-style listener: no new connections, each open one's session closed and its
 * socket cut, then `after` (the upstream agent's pooled sockets). Resolves once the server closed.
 */
export function closeListener(server: Server, connections: Map<Socket, { closeSession(): void }>, after: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const [socket, c] of connections) {
      c.closeSession();
      socket.destroy();
    }
    connections.clear();
    after();
  });
}
