// The layering of DESIGN.md, checked on the source: every import between folders of src/ points
// down the stack, the CLI reaches the engine only through node/ and server/, and node/ and
// server/ never import each other. A new import that breaks the picture fails here, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

/** Which folders each folder of src/ may import from (besides itself). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  net: [],
  log: [],
  identity: [],
  types: [],
  stun: ['net', 'log'],
  portmap: ['net', 'log'],
  netcheck: ['stun', 'portmap', 'net', 'log'],
  disco: ['identity', 'net', 'log'],
  magicsock: ['disco', 'netcheck', 'portmap', 'stun', 'identity', 'net', 'log'],
  tunnel: ['magicsock', 'disco', 'identity', 'net', 'log'],
  coordination: ['net'],
  node: ['coordination', 'tunnel', 'magicsock', 'netcheck', 'portmap', 'stun', 'identity', 'net', 'log'],
  server: ['coordination', 'stun', 'identity', 'net', 'log'],
  cli: ['node', 'server', 'coordination', 'netcheck', 'portmap', 'stun', 'identity', 'net', 'log'],
  // The package's entry point (src/index.ts): the app API of node/ and the types it hands out.
  'index.ts': ['node', 'coordination', 'tunnel', 'identity', 'net', 'log'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

function folderOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!;
}

/** Relative imports of a file (static, dynamic and type-only), resolved to files under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s));
}

const files = sources(SRC);

test('every folder of src/ is one the layering knows', () => {
  const unknown = [...new Set(files.map(folderOf))].filter((f) => !(f in MAY_IMPORT));
  assert.deepEqual(unknown, [], 'add the new folder to MAY_IMPORT (and to the README layout)');
});

test('imports between folders point down the stack', () => {
  const wrong: string[] = [];
  for (const file of files) {
    const from = folderOf(file);
    for (const target of importsOf(file)) {
      if (!target.startsWith(SRC + sep)) continue;
      const to = folderOf(target);
      if (to === from || MAY_IMPORT[from]?.includes(to)) continue;
      wrong.push(`${relative(ROOT, file)} imports ${relative(ROOT, target)} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('disco knows nothing of streams: no stream-control type or codec in it', () => {
  const mentions = files
    .filter((f) => folderOf(f) === 'disco')
    .filter((f) => /stream-open|stream-accept|carrier-ack|tcp-lane|StreamControl/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(ROOT, f));
  assert.deepEqual(mentions, []);
});
