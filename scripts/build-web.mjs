#!/usr/bin/env node
// Builds the dashboard's front end (web/src) into dist/web: one script and one style sheet with
// content hashes in their names (the server caches them for good), the page that loads them, and
// a manifest the server reads at start. Runs in `npm run build` and `prepare` (so at `npm ci`);
// the result ships in the package, so an installed traverse needs neither esbuild nor network.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const out = 'dist/web';
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: { app: 'web/src/main.ts', style: 'web/src/style.css' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const files = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = files.find((f) => f.startsWith('app-') && f.endsWith('.js'));
const style = files.find((f) => f.startsWith('style-') && f.endsWith('.css'));
if (!script || !style) throw new Error(`esbuild wrote ${files.join(', ')}: no app script or style`);
const type = (f) => (f.endsWith('.js') ? 'text/javascript; charset=utf-8' : f.endsWith('.css') ? 'text/css; charset=utf-8' : 'application/octet-stream');

// No inline script or style: the Content-Security-Policy allows our own files only.
writeFileSync(
  join(out, 'index.html'),
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Traverse</title><link rel="stylesheet" href="/assets/${style}"><script type="module" src="/assets/${script}"></script>
</head><body><div id="app"></div></body></html>
`,
);
writeFileSync(join(out, 'manifest.json'), JSON.stringify({ files: files.map((f) => ({ path: f, type: type(f) })) }, null, 2) + '\n');
console.log(`dashboard: ${files.map((f) => `dist/web/assets/${f}`).join(', ')}`);
