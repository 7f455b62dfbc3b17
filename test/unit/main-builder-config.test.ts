/**
 * The packaging config without packaging: electron-builder.yml checked by electron-builder's own
 * validator (app-builder-lib's scheme.json), which must also refuse a broken config, and what it
 * packs must exist after `npm run build`. `electron-builder --dir` is not run: offline it rebuilds
 * native modules in node_modules and then needs an Electron binary, neither of which CI has.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as { validateConfiguration(c: unknown, l: unknown): Promise<void> };
const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };

describe('main: electron-builder.yml', () => {
  const config = parse(fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;

  it('passes electron-builder\'s own schema', async () => {
    assert.ok(fs.existsSync(require.resolve('app-builder-lib/scheme.json')), 'the schema the validator uses is installed');
    await validateConfiguration(structuredClone(config), new DebugLogger(false));
  });

  it('the validator is not a no-op: it refuses an unknown key and a wrong type', async () => {
    await assert.rejects(validateConfiguration({ ...structuredClone(config), notAnOption: true }, new DebugLogger(false)), /notAnOption/);
    await assert.rejects(validateConfiguration({ ...structuredClone(config), asar: 'yes please' }, new DebugLogger(false)), /asar/);
  });

  it('packs what the build produced: the main entry, the preload, the gateway the shell spawns, the renderer', () => {
    const main = (config.extraMetadata as { main: string }).main;
    assert.equal(main, 'dist/main/main.js');
    for (const f of [main, 'dist/main/preload.js', 'dist/main/gateway-process.js', 'dist/main/ipc.js', 'dist/gateway/cli/main.js', 'dist/renderer/index.html', 'bin/flightlog.js']) {
      assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} exists after npm run build`);
    }
    const files = config.files as string[];
    for (const g of ['bin/**', 'dist/gateway/**', 'dist/main/**', 'dist/renderer/**', '!dist/test/**']) assert.ok(files.includes(g), g);
  });

  it('keeps the native module outside the asar and rebuilt for Electron, and opens .flightlog bundles', () => {
    assert.equal(config.npmRebuild, true);
    assert.ok((config.asarUnpack as string[]).some((p) => p.includes('better-sqlite3') && p.endsWith('.node')));
    const assoc = config.fileAssociations as Array<{ ext: string; mimeType: string }>;
    assert.deepEqual(assoc.map((a) => a.ext), ['flightlog']);
    assert.ok(fs.readFileSync(path.join(ROOT, 'main', 'main.ts'), 'utf8').includes("const BUNDLE_EXT = '.flightlog';"), 'main opens the extension the package registers');
  });
});
