/**
 * Serves the built renderer (dist/renderer) on the control API's loopback port, with a strict
 * CSP, plus the replay routes. The page itself is public (it holds no data); everything it shows
 * comes from /api/, which needs the bearer token the page reads from its URL fragment.
 */
import type * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Db } from '../store/db';
import { createReplayRoutes } from '../replay/replay-routes';
import type { ControlApiOptions } from './server';

/** The CSP every UI response carries. Monaco injects <style> elements, hence style-src 'unsafe-inline'. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

/** Where the built renderer lives: $FLIGHTLOG_RENDERER_DIR, else dist/renderer beside this compiled file. */
export function defaultRendererDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLIGHTLOG_RENDERER_DIR ? path.resolve(env.FLIGHTLOG_RENDERER_DIR) : path.resolve(__dirname, '..', '..', 'renderer');
}

const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;

function securityHeaders(): Record<string, string> {
  return {
    'content-security-policy': UI_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...securityHeaders(), 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** Maps a URL path to a file under root, or null when it would leave root or names nothing servable. */
export function resolveStaticPath(root: string, pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/').filter(Boolean);
  if (parts.some((p) => p === '..' || p === '.' || p.startsWith('.'))) return null;
  const file = path.resolve(root, ...(parts.length ? parts : ['index.html']));
  const base = path.resolve(root) + path.sep;
  return file.startsWith(base) ? file : null;
}

async function serveStatic(root: string, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'method not allowed\n');
    return true;
  }
  // A page on another name resolving to 127.0.0.1 (DNS rebinding) gets nothing from us.
  if (!LOOPBACK_HOST.test(req.headers.host ?? '')) {
    sendText(res, 403, 'forbidden host\n');
    return true;
  }
  const file = resolveStaticPath(root, url.pathname);
  if (!file) {
    sendText(res, 404, 'not found\n');
    return true;
  }
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    if (url.pathname === '/' || url.pathname === '/index.html') {
      sendText(res, 503, 'the Flightlog UI is not built: run "npm run build" (node scripts/build-renderer.js)\n');
    } else {
      sendText(res, 404, 'not found\n');
    }
    return true;
  }
  if (!stat.isFile()) {
    sendText(res, 404, 'not found\n');
    return true;
  }
  const ext = path.extname(file).toLowerCase();
  res.writeHead(200, {
    ...securityHeaders(),
    'content-type': TYPES[ext] ?? 'application/octet-stream',
    'content-length': stat.size,
    // index.html names the bundle; the bundle itself changes only with a rebuild
    'cache-control': ext === '.html' ? 'no-cache' : 'public, max-age=3600',
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((resolve) => {
    const stream = fs.createReadStream(file);
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    stream.on('end', () => resolve());
    stream.pipe(res);
  });
  return true;
}

export interface UiRoutes {
  extra: NonNullable<ControlApiOptions['extra']>;
  close(): void;
}

/**
 * The control API `extra` hook for the UI: static files for non-/api/ paths (offered before
 * the token check) and the replay routes under /api/ (offered after it).
 */
export function createUiRoutes(opts: { db: Db; rendererDir?: string }): UiRoutes {
  const root = opts.rendererDir ?? defaultRendererDir();
  const replay = createReplayRoutes(opts.db);
  return {
    extra: async (req, res, url) => {
      if (url.pathname.startsWith('/api/')) return replay.handle(req, res, url);
      return serveStatic(root, req, res, url);
    },
    close: () => replay.close(),
  };
}
