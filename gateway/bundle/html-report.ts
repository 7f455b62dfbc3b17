/**
 * `flightlog export … --format html`: one self-contained HTML file a lead opens from disk. It is
 * built from a signed bundle of the same sessions (so it is masked exactly as the bundle is) and
 * embeds every bundle member verbatim as readable text, with the page script that verifies those
 * bytes in the browser (gateway/bundle/html-report/).
 *
 * Embedding: each member goes into `<script type="application/json|text/plain"
 * data-member="NAME">` blocks. Only two sequences could end or confuse such a block, `</script`
 * and `<!--` (any case); the member is cut into consecutive blocks right after the `<` of each, and
 * the page joins a member's blocks in document order. Nothing else is altered, so `grep` and `diff`
 * see the recorded text as it is in the bundle. The HTML parser would turn CR into LF and NUL into
 * U+FFFD; bundle members never hold either (they are JSON.stringify output, PEM and sums), and the
 * exporter refuses one that does rather than write a report that cannot verify.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Db } from '../store/db';
import type { GatewayKey } from '../store/chain';
import { BundleError } from './errors';
import { exportBundle } from './export';
import { TarReader, humanBytes } from './tar';

export interface HtmlReportOptions {
  sessionIds: string[];
  out: string;
  key: GatewayKey;
  onProgress?: (done: number, total: number) => void;
  /** where html-report.js and .css were built (tests); defaults to the renderer build beside this file */
  pageDir?: string;
  /** refuse a recording (the bundle's size) over this; MAX_REPORT_RECORDING_BYTES by default */
  maxRecordingBytes?: number;
}

export interface HtmlReportResult {
  sessions: number;
  events: number;
  bytes: number;
  /** bytes of the embedded members (the recording), for the size bound */
  memberBytes: number;
}

export interface ReportMember {
  name: string;
  data: Buffer;
}

/** dist/renderer, where scripts/build-renderer.js writes the page, seen from dist/gateway/bundle. */
export function defaultPageDir(): string {
  return path.resolve(__dirname, '..', '..', 'renderer');
}

function pageAssets(dir: string): { js: string; css: string } {
  const js = path.join(dir, 'html-report.js');
  const css = path.join(dir, 'html-report.css');
  if (!fs.existsSync(js) || !fs.existsSync(css)) throw new BundleError('E_EXPORT_FORMAT', `the HTML report page is not built (${js}); run npm run build`);
  return { js: fs.readFileSync(js, 'utf8'), css: fs.readFileSync(css, 'utf8') };
}

/** The cut points of a member's text: right after the `<` of every `</script` and `<!--`. */
export function splitMemberText(text: string): string[] {
  const parts: string[] = [];
  let from = 0;
  for (const m of text.matchAll(/<(?=\/script|!--)/gi)) {
    const cut = m.index + 1;
    parts.push(text.slice(from, cut));
    from = cut;
  }
  parts.push(text.slice(from));
  return parts;
}

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

function memberText(m: ReportMember): string {
  const text = m.data.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(m.data)) throw new BundleError('E_EXPORT_FORMAT', `${m.name} is not valid UTF-8; it cannot be embedded so that it verifies`);
  if (/[\r\0]/.test(text)) throw new BundleError('E_EXPORT_FORMAT', `${m.name} holds a raw CR or NUL, which HTML cannot carry unchanged`);
  return text;
}

function blocksOf(m: ReportMember): string {
  const type = m.name.endsWith('.json') ? 'application/json' : 'text/plain';
  return splitMemberText(memberText(m))
    .map((part) => `<script type="${type}" data-member="${attr(m.name)}">${part}</script>\n`)
    .join('');
}

const cspHash = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The report's HTML before and after the members: a strict CSP admitting only this page's script (by hash) and styles (by nonce). */
function frame(page: { js: string; css: string }, nonce: string): { head: string; tail: string } {
  // the page script sits in a script block too: it must not end it early
  if (/<\/script|<!--/i.test(page.js)) throw new BundleError('E_EXPORT_FORMAT', 'the built report page contains </script or <!--; rebuild it');
  if (/<\/style/i.test(page.css)) throw new BundleError('E_EXPORT_FORMAT', 'the built report stylesheet contains </style; rebuild it');
  const csp = [`default-src 'none'`, `script-src ${cspHash(page.js)}`, `style-src 'nonce-${nonce}'`, `img-src data:`, `font-src data:`, `base-uri 'none'`, `form-action 'none'`].join('; ');
  const head = [
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    `<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">\n`,
    '<meta name="referrer" content="no-referrer">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    '<meta name="generator" content="flightlog export --format html">\n<title>Flightlog report</title>\n',
    `<style nonce="${attr(nonce)}">${page.css}</style>\n</head>\n<body>\n`,
    '<noscript>This report verifies and shows its bundle with JavaScript; the members below are readable as text.</noscript>\n<main id="report"></main>\n',
    '<!-- The bundle members, verbatim (README: HTML report). A member continues over several blocks only where its text held a script end tag or a comment opener. -->\n',
  ].join('');
  return { head, tail: `<script>${page.js}</script>\n</body>\n</html>\n` };
}

/** The whole report as one string (small reports; the exporter streams the same text to its file). */
export function renderHtmlReport(members: ReportMember[], page: { js: string; css: string }, nonce = randomBytes(18).toString('base64')): string {
  const { head, tail } = frame(page, nonce);
  return head + members.map(blocksOf).join('') + tail;
}

/** A browser holds the whole page in memory; past this a bundle and `flightlog open` serve better. */
export const MAX_REPORT_RECORDING_BYTES = 256 * 1024 ** 2;

/** Writes one HTML report of the given sessions to `out`. */
export async function exportHtmlReport(db: Db, opts: HtmlReportOptions): Promise<HtmlReportResult> {
  const out = path.resolve(opts.out);
  if (fs.existsSync(out)) throw new BundleError('E_EXISTS', `${opts.out} already exists`);
  const page = pageAssets(opts.pageDir ?? defaultPageDir());
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'flightlog-html-'));
  const partial = `${out}.partial-${process.pid}`;
  try {
    const bundle = path.join(tmp, 'report.flightlog');
    const r = await exportBundle(db, { sessionIds: opts.sessionIds, out: bundle, key: opts.key, onProgress: opts.onProgress });
    const limit = opts.maxRecordingBytes ?? MAX_REPORT_RECORDING_BYTES;
    if (r.bytes > limit) {
      throw new BundleError('E_EXPORT_TOO_LARGE', `the recording is ${humanBytes(r.bytes)}, over the ${humanBytes(limit)} one HTML page can hold; export a bundle (-o FILE.flightlog) and read it with flightlog open`);
    }
    const { head, tail } = frame(page, randomBytes(18).toString('base64'));
    const fh = await fs.promises.open(partial, 'wx', 0o644);
    let bytes = 0;
    let memberBytes = 0;
    const write = async (text: string): Promise<void> => {
      const buf = Buffer.from(text, 'utf8');
      for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
      bytes += buf.length;
    };
    const reader = await TarReader.open(bundle, { maxMembers: 1_000_000, maxMemberBytes: limit });
    try {
      await write(head);
      // one member in memory at a time, in archive order (the order the page reports problems in)
      for (let e = await reader.next(); e; e = await reader.next()) {
        const m = { name: e.name, data: await reader.readAll(e) };
        memberBytes += m.data.length;
        await write(blocksOf(m));
      }
      await write(tail);
    } finally {
      await reader.close();
      await fh.close();
    }
    await fs.promises.rename(partial, out);
    return { sessions: r.sessions, events: r.events, bytes, memberBytes };
  } catch (err) {
    await fs.promises.rm(partial, { force: true });
    throw err;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
