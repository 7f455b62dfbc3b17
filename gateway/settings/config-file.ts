/**
 * Settings write-back: edits flightlog.yaml through the `yaml` Document API (comments and order
 * kept where the edit allows), validates the result with the very loader `flightlog gateway` uses,
 * and replaces the file atomically (temp file + rename, 0600) only once the gateway took it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import { ConfigError, FlightlogError } from '../core/errors';
import { DEFAULT_RECORDING, validateConfig } from '../config/load';
import type { ConnectionConfig, FlightlogConfig, Upstream } from '../common/config-schema';
import type { ConnectionInput } from '../common/api-types';

const HEADER = ' flightlog.yaml, written by Flightlog Settings. Secrets are referenced ({ env: NAME } or { file: PATH }), never written here.';

/** Where Settings writes: the file the gateway was started with, else `<dataDir>/flightlog.yaml` (which `flightlog gateway/ui` load when no --config is given). */
export function settingsFile(config: FlightlogConfig, dataDir: string): string {
  if (config.file && path.isAbsolute(config.file) && fs.existsSync(config.file)) return config.file;
  return path.join(dataDir, 'flightlog.yaml');
}

/** A validated connection back in the shape flightlog.yaml spells it (secrets stay references). */
export function toConnectionInput(c: ConnectionConfig): ConnectionInput {
  const host = c.listen.host.includes(':') ? `[${c.listen.host}]` : c.listen.host;
  const out: ConnectionInput = {
    name: c.name,
    protocol: c.protocol,
    listen: `${host}:${c.listen.port}`,
    upstream: compact(c.upstream) as unknown as Upstream,
    identities: [...c.identities],
    mask: c.mask,
  };
  if (c.llm) out.llm = c.llm;
  if (Object.keys(c.options).length) out.options = c.options as ConnectionInput['options'];
  if (c.retention) out.retention = c.retention;
  return out;
}

/** Drops undefined fields and empty maps the validator fills in, so the YAML stays as short as a person would write it. */
function compact(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue;
    const c = compact(x);
    if (c && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 0) continue;
    out[k] = c;
  }
  return out;
}

/** Parses and validates config text exactly as loadConfig does (same checks, same `file:line: path: expected` errors). */
export function parseConfigText(text: string, file: string): { doc: Document; config: FlightlogConfig } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new ConfigError(file, '', `not valid YAML: ${e.message.split('\n')[0]}`, e.linePos?.[0]?.line);
  }
  return { doc, config: validateConfig(doc.toJS(), file, doc, lines) };
}

/** The document to edit: the file as it is on disk, or (no file yet) the running config written out. */
export function readConfigDocument(file: string, running: FlightlogConfig): { doc: Document; before: string | null } {
  let before: string | null = null;
  try {
    before = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new FlightlogError('E_CONFIG_READ', `cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  if (before !== null) return { doc: parseConfigText(before, file).doc, before };
  const seed: Record<string, unknown> = { connections: running.connections.map(toConnectionInput) };
  if (JSON.stringify(running.recording) !== JSON.stringify(DEFAULT_RECORDING)) seed.recording = running.recording;
  const doc = parseDocument('connections: []\n');
  doc.commentBefore = HEADER;
  doc.set('connections', styled(doc, seed.connections));
  if (seed.recording) doc.set('recording', doc.createNode(seed.recording));
  return { doc, before: null };
}

/** A node for a value, with secret references and identity lists in flow style as the docs write them. */
function styled(doc: Document, value: unknown): Node {
  const node = doc.createNode(value) as Node;
  visit(node, {
    Map(_, map) {
      const keys = map.items.map((p) => (isScalar(p.key) ? p.key.value : null));
      if (keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file')) map.flow = true;
    },
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === 'identities' && isSeq(pair.value)) pair.value.flow = true;
    },
  });
  return node;
}

function connectionIndex(doc: Document, name: string): number {
  const list = doc.get('connections');
  if (!isSeq(list)) return -1;
  return list.items.findIndex((item) => isMap(item) && item.get('name') === name);
}

/** Adds a connection, or replaces the one named `replaces` (else the one of the same name) in place, keeping the comment above it. */
export function upsertConnection(doc: Document, connection: unknown, replaces?: string): void {
  const name = connection && typeof connection === 'object' ? (connection as { name?: unknown }).name : undefined;
  const node = styled(doc, connection);
  let i = replaces ? connectionIndex(doc, replaces) : -1;
  if (i < 0 && typeof name === 'string') i = connectionIndex(doc, name);
  if (replaces && typeof name === 'string' && name !== replaces && connectionIndex(doc, name) >= 0) {
    throw new FlightlogError('E_CONNECTION_EXISTS', `a connection named "${name}" already exists`);
  }
  const list = doc.get('connections');
  if (!isSeq(list)) {
    doc.set('connections', doc.createNode([]));
  }
  if (i >= 0) {
    const old = (doc.get('connections') as { items: Node[] }).items[i];
    if (old?.commentBefore) node.commentBefore = old.commentBefore;
    doc.setIn(['connections', i], node);
  } else {
    doc.addIn(['connections'], node);
  }
}

export function removeConnection(doc: Document, name: string): void {
  const i = connectionIndex(doc, name);
  if (i < 0) throw new FlightlogError('E_NOT_FOUND', `no connection "${name}" in the config`);
  doc.deleteIn(['connections', i]);
}

/** A file written beside its target, not yet in place: commit() renames it over the target, abort() removes it. */
export interface StagedFile {
  readonly target: string;
  commit(): void;
  abort(): void;
}

/** Writes text to a temp file in the target's directory (0600, fsynced) so the final rename is atomic. */
export function stageFile(file: string, text: string): StagedFile {
  let target = file;
  try {
    target = fs.realpathSync(file); // write through a symlinked config, don't replace the link
  } catch {
    // not there yet
  }
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  let done = false;
  return {
    target,
    commit() {
      if (done) return;
      done = true;
      fs.renameSync(tmp, target);
    },
    abort() {
      if (done) return;
      done = true;
      fs.rmSync(tmp, { force: true });
    },
  };
}

export interface ApplyOptions {
  file: string;
  running: FlightlogConfig;
  edit?: (doc: Document) => void;
  /** edits the file as text instead (`doc` is `text` parsed): for changes that must keep every other byte */
  editText?: (text: string, doc: Document) => string;
  /** takes the new config live; throws (and changes nothing) when it cannot */
  reload: (config: FlightlogConfig) => Promise<unknown>;
}

/**
 * Edits, validates, stages, reloads, then commits: the file changes only when the gateway
 * accepted the new config, so a refused edit or a failed reload leaves it byte for byte as it was.
 */
export async function applyConfigEdit(opts: ApplyOptions): Promise<FlightlogConfig> {
  const { doc, before } = readConfigDocument(opts.file, opts.running);
  let text: string;
  if (opts.editText) {
    const base = before ?? doc.toString({ lineWidth: 0 });
    text = opts.editText(base, before === null ? parseConfigText(base, opts.file).doc : doc);
  } else {
    opts.edit?.(doc);
    text = doc.toString({ lineWidth: 0 });
  }
  const { config } = parseConfigText(text, opts.file);
  const staged = stageFile(opts.file, text);
  try {
    await opts.reload(config);
  } catch (err) {
    staged.abort();
    throw err;
  }
  try {
    staged.commit();
  } catch (err) {
    staged.abort();
    // the gateway runs the new config but the file could not take it: put the old one back
    await opts.reload(opts.running).catch(() => undefined);
    throw new FlightlogError('E_CONFIG_WRITE', `cannot write ${opts.file}: ${(err as NodeJS.ErrnoException).code ?? 'write failed'}`);
  }
  return config;
}
