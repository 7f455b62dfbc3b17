/** Paged reads from the store and buffered, all-or-nothing file output for the exports. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Db } from '../store/db';
import { eventRowsAfter } from '../store/bundle-reads';
import { BundleError } from './errors';
import type { RawEventRow } from './format';

const PAGE = 256;

/**
 * A session's event rows in seq order, a page at a time. Pages rather than one open iterator:
 * an open better-sqlite3 iterator makes its connection busy, and between awaits the recorder may
 * need that connection when an export runs inside the gateway.
 */
export async function* eventRows(db: Db, sessionId: string): AsyncGenerator<RawEventRow> {
  for (let after = 0; ; ) {
    const page = eventRowsAfter(db, sessionId, after, PAGE);
    if (page.length === 0) return;
    for (const r of page) yield r;
    after = page[page.length - 1].seq;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Writes to `<out>.partial-<pid>` and renames into place on success, so a failed export leaves nothing behind. */
export class OutFile {
  private buffered: string[] = [];
  private size = 0;
  bytes = 0;

  private constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly partial: string,
    private readonly out: string,
  ) {}

  static async create(out: string): Promise<OutFile> {
    const target = path.resolve(out);
    if (fs.existsSync(target)) throw new BundleError('E_EXISTS', `${out} already exists`);
    const partial = `${target}.partial-${process.pid}`;
    try {
      return new OutFile(await fs.promises.open(partial, 'wx', 0o644), partial, target);
    } catch (err) {
      throw new BundleError('E_FILE', `cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? 'unwritable'}`);
    }
  }

  async write(text: string): Promise<void> {
    this.buffered.push(text);
    this.size += text.length;
    if (this.size >= 1024 * 1024) await this.drain();
  }

  private async drain(): Promise<void> {
    if (this.buffered.length === 0) return;
    const buf = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.size = 0;
    let off = 0;
    while (off < buf.length) off += (await this.fh.write(buf, off, buf.length - off)).bytesWritten;
    this.bytes += buf.length;
  }

  async commit(): Promise<number> {
    await this.drain();
    await this.fh.close();
    await fs.promises.rename(this.partial, this.out);
    return this.bytes;
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.promises.rm(this.partial, { force: true });
  }
}

/** Runs `fn` against an OutFile, committing on success and removing the partial file on failure. */
export async function writeOut(out: string, fn: (f: OutFile) => Promise<void>): Promise<number> {
  const f = await OutFile.create(out);
  try {
    await fn(f);
    return await f.commit();
  } catch (err) {
    await f.abort();
    throw err;
  }
}
