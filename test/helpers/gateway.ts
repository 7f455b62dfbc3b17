import * as fs from 'node:fs';
import * as path from 'node:path';
import { Gateway } from '../../gateway/gateway';
import { validateConfig } from '../../gateway/config/load';
import { addIdentity, addIdentityKey, revokeIdentity } from '../../gateway/store/identities';
import { getSession, listSessions, listFindings } from '../../gateway/store/queries';
import type { CommandView, FindingView, SessionDetail, SessionSummary } from '../../gateway/common/api-types';
import type { Logger } from '../../gateway/core/listener';
import { tempDir } from './tmp';

export interface TestGateway {
  gateway: Gateway;
  dataDir: string;
  /** the log lines the gateway wrote (they are part of what must never hold a secret) */
  logs: string[];
  address(connectionName: string): { host: string; port: number };
  addIdentity(name: string, kind?: 'agent' | 'human'): string;
  addKey(name: string, pubKeyPath: string): string;
  revokeIdentity(name: string): void;
  sessions(): SessionSummary[];
  show(id: string): SessionDetail;
  findings(): FindingView[];
  /** Waits until every appended event is committed. */
  flush(): Promise<void>;
  /** Files under the data dir whose bytes contain the needle (also checks the logs: reported as "<logs>"). */
  grepDataDir(needle: string): string[];
  close(): Promise<void>;
}

/** A temp data dir removed when the test process exits (tests grep it after the gateway stops). */
function tempDataDir(): string {
  return tempDir('flightlog-test-');
}

/** Files (recursively) under dir whose raw bytes contain needle. */
export function grepDir(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const n = Buffer.from(needle);
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(n)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

/**
 * Runs the real gateway in-process on a temp data dir. Connections are given as in flightlog.yaml;
 * a `listen` left out becomes 127.0.0.1:0 (a free port).
 */
export async function startTestGateway(opts: { connections?: unknown[]; env?: Record<string, string>; dataDir?: string; recording?: unknown; guardrails?: unknown[] } = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const connections = (opts.connections ?? []).map((c) => ({ listen: '127.0.0.1:0', ...(c as object) }));
  const config = validateConfig({ connections, ...(opts.recording ? { recording: opts.recording } : {}), ...(opts.guardrails ? { guardrails: opts.guardrails } : {}) }, 'test-config.yaml');
  const logs: string[] = [];
  let masker: Gateway['masker'] | null = null;
  const line = (level: string) => (msg: string) => logs.push(`${level}: ${masker ? masker.maskText(msg).text : msg}`);
  const log: Logger = { info: line('info'), warn: line('warn'), error: line('error') };
  const gateway = await Gateway.start({ config, dataDir, env: { ...process.env, ...(opts.env ?? {}) }, log });
  masker = gateway.masker;
  return {
    gateway,
    dataDir,
    logs,
    address(name) {
      const l = gateway.listeners.get(name)?.listener;
      if (!l) throw new Error(`no listener for connection ${name}`);
      const i = l.address.lastIndexOf(':');
      return { host: l.address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(l.address.slice(i + 1)) };
    },
    addIdentity: (name, kind = 'agent') => addIdentity(gateway.db, name, kind),
    addKey: (name, file) => addIdentityKey(gateway.db, name, fs.readFileSync(file, 'utf8')),
    revokeIdentity: (name) => revokeIdentity(gateway.db, name),
    sessions: () => listSessions(gateway.db).sessions,
    show: (id) => getSession(gateway.db, id),
    findings: () => listFindings(gateway.db),
    flush: () => gateway.recorder.flush(),
    grepDataDir(needle) {
      const hits = grepDir(dataDir, needle);
      if (logs.some((l) => l.includes(needle))) hits.push('<logs>');
      return hits;
    },
    async close() {
      await gateway.stop('test finished');
    },
  };
}

/** Waits until a finished command matching `predicate` is recorded; returns it with its session. */
export async function recordedCommand(gw: TestGateway, predicate: (c: CommandView) => boolean, tries = 100): Promise<{ s: SessionDetail; c: CommandView }> {
  for (let i = 0; i < tries; i++) {
    await gw.flush();
    for (const sum of gw.sessions()) {
      const s = gw.show(sum.id);
      const c = s.commands.find(predicate);
      if (c && c.status !== 'running') return { s, c };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no such command recorded');
}
