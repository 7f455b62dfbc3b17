/** exec, attach and port-forward: not yet implemented in this first version. */
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { KubeObject } from './resources';

export interface StreamOptions {
  workDir: string;
}

export function handleUpgrade(_req: http.IncomingMessage, socket: Duplex, _head: Buffer, _kind: 'exec' | 'attach' | 'portforward', _pod: KubeObject, _q: URLSearchParams, _opts: StreamOptions): void {
  socket.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
}
