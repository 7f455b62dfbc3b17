/**
 * The replay routes, mounted on the control API through its `extra` hook (after the token check:
 * the control API offers /api/ paths to `extra` only once the bearer token matched).
 */
import type * as http from 'node:http';
import type { Db } from '../store/db';
import { FlightlogError } from '../core/errors';
import { resolveSessionId } from '../store/queries';
import { reply } from '../control-api/server';
import { matchRoute } from '../common/routes';
import { ReplayIndexer } from './keyframes';

function intParam(url: URL, name: string, fallback: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new FlightlogError('E_PARAM', `${name} must be a number ≥ 0`);
  return Math.floor(n);
}

export interface ReplayRoutes {
  /** Handles GET /api/sessions/:id/replay[/seek|/frames]; false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean>;
  close(): void;
}

export function createReplayRoutes(db: Db): ReplayRoutes {
  const indexer = new ReplayIndexer(db);
  return {
    async handle(req, res, url) {
      const m = matchRoute(req.method ?? 'GET', url.pathname);
      if (!m || (m.name !== 'replayIndex' && m.name !== 'replaySeek' && m.name !== 'replayFrames')) return false;
      const id = resolveSessionId(db, m.params.id);
      if (m.name === 'replayIndex') reply(res, m.name, await indexer.index(id));
      else if (m.name === 'replaySeek') reply(res, m.name, await indexer.seek(id, intParam(url, 'tUs', 0)));
      else reply(res, m.name, indexer.frames(id, intParam(url, 'afterSeq', 0), intParam(url, 'limit', 2000)));
      return true;
    },
    close: () => indexer.close(),
  };
}
