/**
 * The fixture's object store: one global resourceVersion counter (like etcd's revision), objects
 * per resource keyed by namespace/name, and a bounded history of change events so a watch can
 * resume from a resourceVersion or be told it is too old (410 Expired), as the API documents.
 */
import type { KubeObject } from './resources';
import { fail } from './status';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  key: string;
  rv: number;
  object: KubeObject;
  /** the object before a MODIFIED, so a filtered watch can tell entering from leaving */
  previous?: KubeObject;
}

type Listener = (e: StoreEvent) => void;

const HISTORY = 20_000;

export class ObjectStore {
  private rv = 100;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private history: StoreEvent[] = [];
  private readonly listeners = new Set<Listener>();

  currentRv(): number {
    return this.rv;
  }

  private bucket(key: string): Map<string, KubeObject> {
    let b = this.objects.get(key);
    if (!b) this.objects.set(key, (b = new Map()));
    return b;
  }

  get(key: string, namespace: string, name: string): KubeObject | undefined {
    return this.objects.get(key)?.get(`${namespace}/${name}`);
  }

  /** Objects of a resource sorted by namespace then name (the order `continue` tokens walk). */
  list(key: string, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const [k, o] of this.objects.get(key) ?? []) if (namespace === undefined || k.startsWith(`${namespace}/`)) out.push(o);
    return out.sort((a, b) => cmp(a, b));
  }

  /** Stores the object under a fresh resourceVersion and tells the watchers. */
  put(key: string, obj: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const id = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const previous = this.bucket(key).get(id);
    this.bucket(key).set(id, obj);
    this.emit({ type, key, rv: this.rv, object: obj, previous });
    return obj;
  }

  remove(key: string, namespace: string, name: string): KubeObject | undefined {
    const b = this.objects.get(key);
    const obj = b?.get(`${namespace}/${name}`);
    if (!b || !obj) return undefined;
    b.delete(`${namespace}/${name}`);
    this.rv++;
    // The DELETED event carries the object at its deletion's resourceVersion.
    const gone = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } };
    this.emit({ type: 'DELETED', key, rv: this.rv, object: gone });
    return gone;
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    if (this.history.length > HISTORY * 1.5) this.history = this.history.slice(-HISTORY);
    for (const l of this.listeners) l(e);
  }

  /** Events after `sinceRv` replayed, then live ones, until the returned function is called. */
  subscribe(sinceRv: number, listener: Listener): () => void {
    if (this.history.length && sinceRv < this.history[0].rv - 1 && sinceRv < this.rv) {
      fail(410, `too old resource version: ${sinceRv} (${this.history[0].rv - 1})`, { reason: 'Expired' });
    }
    for (const e of this.history) if (e.rv > sinceRv) listener(e);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function cmp(a: KubeObject, b: KubeObject): number {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
