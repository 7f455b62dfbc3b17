/**
 * Watches (`?watch=true`): a chunked JSON stream of `{"type":"ADDED|MODIFIED|DELETED","object":…}`
 * events, one per line, from the given resourceVersion (or the current objects as ADDED first
 * when none or "0" is given), ending after `timeoutSeconds`. A resourceVersion older than the
 * history answers an ERROR event carrying a 410 Expired Status, as the API documents. With a
 * Table Accept each object is a one-row Table, column definitions only in the first.
 */
import type * as http from 'node:http';
import type { KubeApi, Negotiated } from './api';
import { includeObject } from './api';
import type { KubeObject, ResourceDef } from './resources';
import { StatusError } from './status';
import { partialMetadata, tableOf } from './table';

export function serveWatch(api: KubeApi, def: ResourceDef, namespace: string | undefined, q: URLSearchParams, neg: Negotiated, req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  let first = true;
  const write = (type: string, obj: KubeObject) => {
    let object: unknown = obj;
    if (neg.table) object = tableOf(def, [obj], { resourceVersion: obj.metadata.resourceVersion ?? '' }, { includeObject: includeObject(q), noHeaders: !first });
    else if (neg.partial) object = partialMetadata(obj);
    first = false;
    res.write(JSON.stringify({ type, object }) + '\n');
  };
  const rvParam = q.get('resourceVersion');
  let since: number;
  if (!rvParam || rvParam === '0') {
    for (const o of (api.list(def, namespace, q).items as unknown as KubeObject[])) write('ADDED', o);
    since = api.store.currentRv();
  } else since = Number(rvParam);
  let stop: () => void = () => undefined;
  try {
    stop = api.watch(def, namespace, q, Number.isFinite(since) ? since : 0, (e) => write(e.type, e.object));
  } catch (e) {
    if (e instanceof StatusError) {
      res.end(JSON.stringify({ type: 'ERROR', object: e.status }) + '\n');
      return;
    }
    throw e;
  }
  const timeout = Number(q.get('timeoutSeconds') ?? 1800);
  const timer = setTimeout(() => res.end(), Math.max(1, timeout) * 1000);
  const done = () => {
    clearTimeout(timer);
    stop();
  };
  // Not req's 'close': it fires once the (empty) request body is read, not when the client goes.
  res.on('close', done);
}
