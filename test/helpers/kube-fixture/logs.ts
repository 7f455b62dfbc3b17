/**
 * `GET …/pods/NAME/log`: the container's log as chunked text/plain, streamed as the source
 * yields it (so `logs -f` sees each chunk when it is made), with `container` (required when the
 * pod has several), `tailLines`, `limitBytes` and `timestamps`. A pod with no logs set answers
 * an empty body (with `follow`, it stays open until the client goes).
 */
import type * as http from 'node:http';
import type { KubeObject } from './resources';
import { fail } from './status';

export type LogSource = () => AsyncIterable<Buffer> | Iterable<Buffer>;

function containersOf(pod: KubeObject): string[] {
  const cs = (pod as unknown as { spec?: { containers?: Array<{ name?: string }> } }).spec?.containers ?? [];
  return cs.map((c) => c.name ?? '');
}

/** Throws the Status the API server answers for a bad container choice, before headers go out. */
export function checkContainer(pod: KubeObject, container: string | null): string {
  const names = containersOf(pod);
  if (!container) {
    if (names.length === 1) return names[0];
    fail(400, `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`);
  }
  if (!names.includes(container)) fail(400, `container ${container} is not valid for pod ${pod.metadata.name}`);
  return container;
}

export async function serveLogs(pod: KubeObject, source: LogSource | undefined, q: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  checkContainer(pod, q.get('container'));
  const follow = q.get('follow') === 'true';
  const tail = q.has('tailLines') ? Number(q.get('tailLines')) : -1;
  let budget = q.has('limitBytes') ? Number(q.get('limitBytes')) : Infinity;
  const stamps = q.get('timestamps') === 'true';
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let gone = false;
  res.on('close', () => (gone = true));
  const stamp = (b: Buffer) => (stamps ? Buffer.from(b.toString('utf8').replace(/^(?=.)/gm, () => `${new Date().toISOString()} `)) : b);
  const emit = async (b: Buffer) => {
    if (gone || budget <= 0) return;
    const out = b.length > budget ? b.subarray(0, budget) : b;
    budget -= out.length;
    if (!res.write(out)) {
      await new Promise<void>((r) => {
        const go = () => {
          res.off('drain', go);
          res.off('close', go);
          r();
        };
        res.on('drain', go);
        res.on('close', go);
      });
    }
  };
  if (!source) {
    if (follow) await new Promise<void>((r) => res.once('close', r));
    res.end();
    return;
  }
  const chunks = source();
  if (tail >= 0) {
    // tailLines needs the whole log first; a fixture log is finite when tailLines is used.
    const all: Buffer[] = [];
    for await (const c of chunks) all.push(c);
    const lines = Buffer.concat(all).toString('utf8').split(/(?<=\n)/);
    await emit(stamp(Buffer.from(lines.slice(Math.max(0, lines.length - tail)).join(''))));
  } else {
    for await (const c of chunks) {
      if (gone || budget <= 0) break;
      await emit(stamp(c));
    }
  }
  res.end();
}
