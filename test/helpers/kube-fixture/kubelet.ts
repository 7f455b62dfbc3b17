/**
 * The fixture's kubelet: what runs in a pod's containers and how the pod reports it.
 * - A container whose spec names a `command` or `args` runs that as a real process (in the
 *   container's work dir) from the moment the pod is created; its output becomes the pod's log
 *   (unless the test set one with setLogs), and when it exits the pod's status says so:
 *   Succeeded or Failed for `restartPolicy: Never`, a restart count and CrashLoopBackOff otherwise.
 *   Containers without a command stand for long-running images: Running, nothing executed.
 * - `attach` joins that main process (starting `sh` if the container had none), sharing its
 *   output; with `stdinOnce` the first attach's end of input closes the process's stdin.
 * - exec starts a fresh process per request.
 */
import type { KubeApi } from './api';
import { containerDir, startProcess, type ContainerProcess } from './container-process';
import { findResource, resourceKey, type KubeObject, type ResourceDef } from './resources';
import { clone, type JsonObject } from './patch';
import { NODE_NAME, timestamp } from './defaults';
import { recordEvent } from './events';
import type { KubeStatus } from './status';

const POD = findResource('', 'v1', 'pods') as ResourceDef;

interface ContainerSpec {
  name?: string;
  command?: string[];
  args?: string[];
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
}

type Output = (channel: 1 | 2, b: Buffer) => void;

interface CapturedLog {
  chunks: Buffer[];
  running: boolean;
  wake: Set<() => void>;
}

interface MainProcess {
  proc: ContainerProcess;
  tty: boolean;
  listeners: Set<Output>;
  stdinOnce: boolean;
  exited: Promise<KubeStatus>;
}

/** One exec or attach session as the transports see it. */
export interface Session {
  write(b: Buffer): void;
  endStdin(): void;
  resize(width: number, height: number): void;
  /** the error-channel Status, once every byte of output has been handed to `out` */
  done: Promise<KubeStatus>;
  /** the client went away: exec kills its process, attach leaves the container running */
  detach(): void;
}

export interface SessionRequest {
  argv: string[];
  stdin: boolean;
  tty: boolean;
  container: string;
}

function pump(from: NodeJS.ReadableStream, to: (b: Buffer) => void): Promise<void> {
  return new Promise((resolve) => {
    from.on('data', (b: Buffer) => to(b));
    from.once('end', () => resolve());
    from.once('error', () => resolve());
  });
}

export class Kubelet {
  private readonly mains = new Map<string, MainProcess>();
  private readonly logs = new Map<string, CapturedLog>();
  private stop: () => void = () => undefined;

  constructor(private readonly api: KubeApi, private readonly workDir: string) {}

  start(): void {
    this.stop = this.api.store.subscribe(this.api.store.currentRv(), (e) => {
      if (e.key === resourceKey(POD) && e.type === 'DELETED') this.podGone(e.object);
    });
  }

  close(): void {
    this.stop();
    for (const m of this.mains.values()) m.proc.kill();
    this.mains.clear();
  }

  /** What the pod's container printed, when it ran a command (the default log source); follows it while it runs. */
  capturedLog(namespace: string, pod: string, container: string): (() => AsyncIterable<Buffer>) | undefined {
    const log = this.logs.get(`${namespace}/${pod}/${container}`);
    if (!log) return undefined;
    return async function* () {
      for (let i = 0; ; i++) {
        while (i >= log.chunks.length) {
          if (!log.running) return;
          await new Promise<void>((r) => log.wake.add(r));
        }
        yield log.chunks[i];
      }
    };
  }

  private containers(pod: KubeObject): ContainerSpec[] {
    return ((pod as unknown as { spec?: { containers?: ContainerSpec[] } }).spec?.containers ?? []);
  }

  /** A pod created through the API (seeded bench pods are not: they stay silent). */
  created(def: ResourceDef, pod: KubeObject): void {
    if (def !== POD) return;
    setImmediate(() => {
      if (!this.api.get(POD, pod.metadata.namespace ?? '', pod.metadata.name ?? '')) return;
      recordEvent(this.api, pod, 'Scheduled', `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${NODE_NAME}`, 'default-scheduler');
      for (const c of this.containers(pod)) {
        const image = (c as { image?: string }).image ?? '';
        recordEvent(this.api, pod, 'Pulled', `Container image "${image}" already present on machine`, 'kubelet');
        recordEvent(this.api, pod, 'Created', `Created container ${c.name}`, 'kubelet');
        recordEvent(this.api, pod, 'Started', `Started container ${c.name}`, 'kubelet');
        if (c.command?.length || c.args?.length) this.main(pod, c);
      }
    });
  }

  private podGone(pod: KubeObject): void {
    const prefix = `${pod.metadata.namespace}/${pod.metadata.name}/`;
    for (const [k, m] of this.mains) {
      if (k.startsWith(prefix)) {
        m.proc.kill();
        this.mains.delete(k);
      }
    }
    for (const k of this.logs.keys()) if (k.startsWith(prefix)) this.logs.delete(k);
  }

  /** The container's main process, started if it is not running. */
  private main(pod: KubeObject, c: ContainerSpec): MainProcess {
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    const key = `${ns}/${name}/${c.name}`;
    const existing = this.mains.get(key);
    if (existing) return existing;
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    const tty = c.tty === true;
    const proc = startProcess({ argv: argv.length ? argv : ['sh'], tty, cwd: containerDir(this.workDir, ns, name, c.name ?? ''), pod: name });
    if (!c.stdin) proc.stdin.end();
    const listeners = new Set<Output>();
    const log: CapturedLog = { chunks: [], running: true, wake: new Set() };
    this.logs.set(key, log);
    const wake = () => {
      for (const w of log.wake) w();
      log.wake.clear();
    };
    const emit = (channel: 1 | 2) => (b: Buffer) => {
      log.chunks.push(b);
      wake();
      for (const l of listeners) l(channel, b);
    };
    const drained = Promise.all([pump(proc.stdout, emit(1)), pump(proc.stderr, emit(2))]);
    const exited = Promise.all([proc.done, drained]).then(([status]) => status);
    const m: MainProcess = { proc, tty, listeners, stdinOnce: c.stdinOnce === true, exited };
    this.mains.set(key, m);
    void exited.then((status) => {
      log.running = false;
      wake();
      if (this.mains.get(key) !== m) return;
      this.mains.delete(key);
      this.containerExited(ns, name, c.name ?? '', status);
    });
    return m;
  }

  private containerExited(namespace: string, name: string, container: string, status: KubeStatus): void {
    const pod = this.api.get(POD, namespace, name);
    if (!pod) return;
    const code = status.status === 'Success' ? 0 : Number(status.details?.causes?.find((x) => x.reason === 'ExitCode')?.message ?? 128);
    const next = clone(pod) as unknown as { spec: JsonObject; status: JsonObject };
    const policy = String(next.spec.restartPolicy ?? 'Always');
    const statuses = (next.status.containerStatuses as JsonObject[] | undefined) ?? [];
    const cs = statuses.find((s) => s.name === container);
    const now = timestamp();
    const restarts = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    if (cs) {
      cs.ready = false;
      cs.started = false;
      const terminated = { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', startedAt: (cs.state as JsonObject)?.running ? ((cs.state as JsonObject).running as JsonObject).startedAt : now, finishedAt: now, containerID: cs.containerID ?? null };
      if (restarts) {
        cs.restartCount = Number(cs.restartCount ?? 0) + 1;
        cs.lastState = { terminated };
        cs.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${container}` } };
      } else cs.state = { terminated };
    }
    if (!restarts) {
      const done = statuses.every((s) => (s.state as JsonObject | undefined)?.terminated);
      if (done) next.status.phase = statuses.every((s) => ((s.state as JsonObject).terminated as JsonObject).exitCode === 0) ? 'Succeeded' : 'Failed';
    }
    for (const cond of (next.status.conditions as JsonObject[] | undefined) ?? []) {
      if (cond.type === 'Ready' || cond.type === 'ContainersReady') {
        cond.status = 'False';
        cond.lastTransitionTime = now;
      }
    }
    this.api.commit(POD, pod, next as unknown as KubeObject, new URLSearchParams({ fieldManager: 'kubelet' }), 'kubelet', 'status');
    if (restarts) recordEvent(this.api, pod, 'BackOff', `Back-off restarting failed container ${container} in pod ${name}_${namespace}(${pod.metadata.uid})`, 'kubelet', 'Warning');
  }

  /** An exec (fresh process) or attach (the main process) session writing its output to `out`. */
  open(kind: 'exec' | 'attach', pod: KubeObject, r: SessionRequest, out: Output): Session {
    if (kind === 'exec') {
      const proc = startProcess({ argv: r.argv, tty: r.tty, cwd: containerDir(this.workDir, pod.metadata.namespace ?? '', pod.metadata.name ?? '', r.container), pod: pod.metadata.name ?? '' });
      if (!r.stdin) proc.stdin.end();
      const drained = Promise.all([pump(proc.stdout, (b) => out(1, b)), pump(proc.stderr, (b) => out(2, b))]);
      return {
        write: (b) => proc.stdin.write(b),
        endStdin: () => proc.stdin.end(),
        resize: (w, h) => proc.resize(w, h),
        done: Promise.all([proc.done, drained]).then(([s]) => s),
        detach: () => proc.kill(),
      };
    }
    const spec = this.containers(pod).find((c) => c.name === r.container) ?? { name: r.container };
    const m = this.main(pod, spec);
    m.listeners.add(out);
    return {
      write: (b) => {
        if (!m.proc.stdin.writableEnded) m.proc.stdin.write(b);
      },
      endStdin: () => {
        if (m.stdinOnce) m.proc.stdin.end();
      },
      resize: (w, h) => m.proc.resize(w, h),
      done: m.exited,
      detach: () => m.listeners.delete(out),
    };
  }
}
