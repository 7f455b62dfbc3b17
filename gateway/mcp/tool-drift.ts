/**
 * Tool drift ("rug pull"): a tool whose name, description or input schema changes after the agent
 * first saw it. Each connection keeps the first definition it saw of every tool (masked) in the
 * data dir, so a change is caught within a session and across sessions and gateway restarts.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Json, Masker } from '../common/types';
import { canonicalJson } from './canonical';

export { canonicalJson };

/** The parts of a tool that decide what the model believes it does. */
export interface ToolDefinition {
  name: string;
  description: string | null;
  inputSchema: Json;
}

export interface ToolChange {
  field: 'description' | 'inputSchema';
  before: Json;
  after: Json;
}

/** The definition as a tools/list entry gives it; null when the entry has no name. */
export function toolDefinition(entry: unknown): ToolDefinition | null {
  if (!entry || typeof entry !== 'object') return null;
  const e = entry as { name?: unknown; description?: unknown; inputSchema?: unknown };
  if (typeof e.name !== 'string') return null;
  return { name: e.name, description: typeof e.description === 'string' ? e.description : null, inputSchema: (e.inputSchema ?? null) as Json };
}

export function fingerprintTool(def: ToolDefinition): string {
  return createHash('sha256').update(canonicalJson(def)).digest('hex').slice(0, 32);
}

/** What changed between two definitions of one tool, field by field. */
export function diffTool(before: ToolDefinition, after: ToolDefinition): ToolChange[] {
  const out: ToolChange[] = [];
  if (before.description !== after.description) out.push({ field: 'description', before: before.description, after: after.description });
  if (canonicalJson(before.inputSchema) !== canonicalJson(after.inputSchema)) out.push({ field: 'inputSchema', before: before.inputSchema, after: after.inputSchema });
  return out;
}

/** Where a connection's accepted tool definitions are kept: one file per connection, whatever the transport. */
export function toolBaselinesFile(dataDir: string, connection: string): string {
  return path.join(dataDir, 'mcp', `${connection}.tools.json`);
}

interface Baseline {
  fingerprint: string;
  definition: ToolDefinition;
  firstSeen: string;
}

/**
 * The accepted definition of each tool of one connection. Definitions are masked before they are
 * kept (a description can quote a secret), and fingerprints are taken over the masked form, whose
 * keyed fingerprints still change when a secret in it does.
 */
export class ToolBaselines {
  private readonly tools = new Map<string, Baseline>();

  constructor(
    private readonly masker: Masker,
    /** where they are kept; null keeps them in memory only (tests) */
    private readonly file: string | null,
  ) {
    if (!file) return;
    try {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { tools?: Record<string, Baseline> };
      for (const [name, b] of Object.entries(saved.tools ?? {})) this.tools.set(name, b);
    } catch {
      // none yet, or unreadable: start again (the first list is the new baseline)
    }
  }

  /** The masked form of a definition, as it is compared and kept. */
  mask(def: ToolDefinition): ToolDefinition {
    return this.masker.maskValue(def as unknown as Json).value as unknown as ToolDefinition;
  }

  get(name: string): Baseline | undefined {
    return this.tools.get(name);
  }

  /** Makes `def` (masked) the accepted definition of its tool. */
  accept(def: ToolDefinition): void {
    this.tools.set(def.name, { fingerprint: fingerprintTool(def), definition: def, firstSeen: new Date().toISOString() });
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ tools: Object.fromEntries(this.tools) }) + '\n', { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch {
      // kept in memory for this gateway's life; drift across restarts is then best effort
    }
  }
}
