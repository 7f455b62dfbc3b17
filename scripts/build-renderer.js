#!/usr/bin/env node
'use strict';
// Bundles the React renderer (renderer/) into dist/renderer/: index.html, app.js, app.css,
// fonts, and Monaco's editor worker as its own file so the CSP can stay `worker-src 'self'`.
// Usage: node scripts/build-renderer.js [--out DIR] [--watch] [--dev]
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const oi = args.indexOf('--out');
const outdir = path.resolve(root, oi >= 0 ? args[oi + 1] : path.join('dist', 'renderer'));
const dev = args.includes('--dev');

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Flightlog</title>
<link rel="stylesheet" href="./app.css">
</head>
<body>
<div id="root"></div>
<script src="./app.js"></script>
</body>
</html>
`;

async function build() {
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  const common = {
    bundle: true,
    minify: !dev,
    sourcemap: dev ? 'inline' : false,
    target: ['chrome120'],
    logLevel: 'warning',
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': JSON.stringify(dev ? 'development' : 'production') },
  };
  await Promise.all([
    esbuild.build({
      ...common,
      entryPoints: { app: path.join(root, 'renderer', 'index.tsx') },
      outdir,
      format: 'iife',
      jsx: 'automatic',
      loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file' },
      assetNames: 'assets/[name]-[hash]',
      tsconfig: path.join(root, 'renderer', 'tsconfig.json'),
    }),
    esbuild.build({
      ...common,
      entryPoints: { 'editor.worker': require.resolve('monaco-editor/editor/editor.worker.js') },
      outdir,
      format: 'iife',
    }),
    // The one-file HTML report's page (gateway/bundle/html-report/): the exporter inlines
    // html-report.js and html-report.css into every report, so it must stand alone (no chunks, no files).
    esbuild.build({
      ...common,
      entryPoints: { 'html-report': path.join(root, 'gateway', 'bundle', 'html-report', 'page.ts') },
      outdir,
      format: 'iife',
      tsconfig: path.join(root, 'renderer', 'tsconfig.json'),
    }),
  ]);
  fs.writeFileSync(path.join(outdir, 'index.html'), INDEX_HTML);
}

build().then(
  () => process.stdout.write(`renderer built into ${path.relative(root, outdir) || '.'}\n`),
  (err) => {
    process.stderr.write(`build-renderer: ${String(err && err.message).split('\n')[0]}\n`);
    process.exit(1);
  },
);
