/**
 * Line-by-line reading of streamed members (NDJSON, and JSON arrays written one element per
 * line), with a cap on line length so a hostile member cannot make the reader buffer gigabytes.
 */
import type { RawEventRow } from './format';

/** Yields each line (without the newline); `null` for a line over the cap (its bytes are dropped). */
export async function* splitLines(chunks: AsyncIterable<Buffer>, maxLine: number, onChunk?: (b: Buffer) => void): AsyncGenerator<string | null> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overflow = false;
  for await (const chunk of chunks) {
    onChunk?.(chunk);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (overflow || carryLen + piece.length > maxLine) {
        overflow = false;
        carry = [];
        carryLen = 0;
        yield null;
        continue;
      }
      const line = carryLen ? Buffer.concat([...carry, piece]).toString('utf8') : piece.toString('utf8');
      carry = [];
      carryLen = 0;
      yield line;
    }
    if (start < chunk.length && !overflow) {
      const rest = chunk.subarray(start);
      if (carryLen + rest.length > maxLine) {
        overflow = true;
        carry = [];
        carryLen = 0;
      } else {
        carry.push(rest);
        carryLen += rest.length;
      }
    }
  }
  if (overflow) yield null;
  else if (carryLen) yield Buffer.concat(carry).toString('utf8');
}

/**
 * Parses a JSON array written as `[`, one element per line with a trailing comma, `]`.
 * Returns the element of a line, `undefined` for the brackets, or throws a one-line reason.
 */
export class LineArrayParser {
  private state: 'start' | 'open' | 'item' | 'closed' = 'start';

  feed(line: string): unknown {
    if (this.state === 'closed') {
      if (line === '') return undefined;
      throw new Error('text after the closing bracket');
    }
    if (this.state === 'start') {
      if (line === '[]') {
        this.state = 'closed';
        return undefined;
      }
      if (line !== '[') throw new Error('expected "[" on the first line');
      this.state = 'open';
      return undefined;
    }
    if (line === ']') {
      this.state = 'closed';
      return undefined;
    }
    if (this.state === 'item') throw new Error('an element line lacks its trailing comma');
    let text = line;
    if (text.endsWith(',')) text = text.slice(0, -1);
    else this.state = 'item';
    return JSON.parse(text) as unknown;
  }

  end(): void {
    if (this.state !== 'closed') throw new Error('the array is not closed (truncated?)');
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Validates one parsed events.ndjson line; returns a reason when it is not an event row. */
export function eventRowProblem(v: unknown): string | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const e = v as Record<string, unknown>;
  if (!isInt(e.seq) || e.seq < 1) return 'seq is not a positive integer';
  if (!isInt(e.t_us)) return 't_us is not an integer';
  for (const k of ['wall', 'kind', 'direction', 'data'] as const) if (typeof e[k] !== 'string') return `${k} is not a string`;
  if (e.command_id !== null && !isInt(e.command_id)) return 'command_id is not an integer or null';
  if (typeof e.hash !== 'string' || !/^[0-9a-f]{64}$/.test(e.hash)) return 'hash is not a sha256 hex digest';
  return null;
}

export function toEventRow(v: Record<string, unknown>): RawEventRow {
  return {
    seq: v.seq as number,
    t_us: v.t_us as number,
    wall: v.wall as string,
    kind: v.kind as string,
    direction: v.direction as string,
    command_id: v.command_id as number | null,
    data: v.data as string,
    hash: v.hash as string,
  };
}
