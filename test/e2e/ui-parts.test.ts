/**
 * The UI's Node-side parts without a browser: the control-string filter, static path
 * resolution, keyframe seeks restoring exactly the screen a linear replay gives, and the
 * electron-builder config validated by electron-builder's own schema.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Terminal } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import { parse } from 'yaml';
import { TerminalFilter, filterTerminalText } from '../../gateway/common/terminal-filter';
import { resolveStaticPath } from '../../gateway/control-api/static';
import { findElectron } from '../../gateway/cli/ui-command';
import { Gateway } from '../../gateway/gateway';
import { validateConfig } from '../../gateway/config/load';
import { ReplayIndexer, KEYFRAME_BYTES } from '../../gateway/replay/keyframes';
import { tempDir } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('terminal filter', () => {
  it('drops OSC 52, titles, hyperlinks, DCS/APC/PM/SOS in 7- and 8-bit forms, keeps text and SGR', () => {
    const input = 'a\x1b]52;c;cHduZWQ=\x07b\x1b]0;title\x1b\\c\x1b]8;;https://x\x07link\x1b]8;;\x07\x1bP+q54\x1b\\\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\\u009d52;c;eA==\u009c\x1b[31mred\x1b[0m';
    assert.equal(filterTerminalText(input), 'abclink\x1b[31mred\x1b[0m');
  });
  it('holds state across chunk boundaries', () => {
    const f = new TerminalFilter();
    const parts = ['x\x1b', ']52;c;', 'cHdu', 'ZWQ=\x1b', '\\y\x1b', '[1mz'];
    assert.equal(parts.map((p) => f.push(p)).join(''), 'xy\x1b[1mz');
    assert.equal(f.dropped, 1);
  });
  it('an ESC inside a string aborts it and starts a new sequence', () => {
    assert.equal(filterTerminalText('\x1b]0;t\x1b[32mgreen'), '\x1b[32mgreen');
  });
});

describe('static paths', () => {
  it('stays inside the renderer dir', () => {
    const root = path.join(os.tmpdir(), 'r');
    assert.equal(resolveStaticPath(root, '/'), path.join(root, 'index.html'));
    assert.equal(resolveStaticPath(root, '/assets/a.ttf'), path.join(root, 'assets', 'a.ttf'));
    for (const p of ['/../x', '/%2e%2e/x', '/a/..%2f..%2fx', '/.env', '/a%00b', '/a\\..\\b', '/%E0%A4%A']) assert.equal(resolveStaticPath(root, p), null, p);
  });
});

describe('electron shell', () => {
  it('electron-builder.yml passes electron-builder\'s own schema and packs the native module right', async () => {
    const config = parse(fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as { validateConfiguration(c: unknown, l: unknown): Promise<void> };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    await validateConfiguration(config, new DebugLogger(false));
    assert.equal(config.npmRebuild, true);
    assert.ok((config.asarUnpack as string[]).some((p) => p.includes('better-sqlite3')));
    assert.deepEqual((config.linux as { target: string[] }).target, ['AppImage', 'deb']);
  });
  it('finds no Electron binary here without trying to download one', () => {
    const r = findElectron({});
    if ('path' in r) assert.ok(fs.existsSync(r.path));
    else assert.match(r.error, /not installed/);
  });
});

describe('replay keyframes', () => {
  it('a seek restores the same screen as replaying from the start', async () => {
    const dataDir = tempDir('flightlog-kf-');
    const gw = await Gateway.start({ config: validateConfig({}, 'kf.yaml'), dataDir, log: { info() {}, warn() {}, error() {} } });
    try {
      const s = gw.recorder.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude' });
      s.event('pty', 'client→upstream', { cols: 80, rows: 24 });
      let total = 0;
      const outputs: string[] = [];
      for (let i = 0; total < KEYFRAME_BYTES * 3; i++) {
        const chunk = i % 50 === 0 ? '\x1b[H\x1b[2J\x1b]0;t\x07' : `\x1b[3${i % 8}mline ${i} ${'#'.repeat(i % 70)}\x1b[0m\r\n`;
        outputs.push(chunk);
        total += chunk.length;
        s.event('o', 'upstream→client', chunk);
        if (i === 9000) s.event('r', 'client→upstream', '100x30');
      }
      s.close();
      await gw.recorder.flush();
      const indexer = new ReplayIndexer(gw.db);
      const index = await indexer.index(s.id);
      assert.ok(index.keyframes.length >= 3, `keyframes: ${index.keyframes.length}`);
      const screen = async (write: (t: Terminal) => void | Promise<void>) => {
        const t = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
        const ser = new SerializeAddon();
        t.loadAddon(ser);
        await write(t);
        await new Promise<void>((r) => t.write('', r));
        const lines: string[] = [];
        for (let y = 0; y < t.rows; y++) lines.push(t.buffer.active.getLine(t.buffer.active.baseY + y)?.translateToString(true) ?? '');
        t.dispose();
        return lines.join('\n');
      };
      for (const frac of [0.2, 0.55, 0.9]) {
        const target = Math.floor(index.durationUs * frac);
        const seek = await indexer.seek(s.id, target);
        const viaSeek = await screen(async (t) => {
          const f = new TerminalFilter();
          if (seek.keyframe) {
            t.resize(seek.keyframe.cols, seek.keyframe.rows);
            t.write(seek.keyframe.snapshot);
          }
          for (const fr of seek.frames) {
            if (fr.k === 'r') {
              await new Promise<void>((r) => t.write('', r));
              t.resize(fr.cols, fr.rows);
            } else t.write(f.push(fr.d));
          }
        });
        const linear = await screen(async (t) => {
          const f = new TerminalFilter();
          let after = 0;
          for (;;) {
            const page = indexer.frames(s.id, after, 5000);
            for (const fr of page.frames) {
              if (fr.tUs > target) return;
              if (fr.k === 'r') {
                await new Promise<void>((r) => t.write('', r));
                t.resize(fr.cols, fr.rows);
              } else t.write(f.push(fr.d));
              after = fr.seq;
            }
            if (!page.more) return;
          }
        });
        assert.equal(viaSeek, linear, `screen at ${frac}`);
      }
      indexer.close();
    } finally {
      await gw.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
