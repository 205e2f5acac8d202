#!/usr/bin/env node
// Runs the compiled test files with node:test. Node 20's `--test` takes no globs, so the
// files are listed here. `--unit` skips the lab (network namespace) tests.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const unitOnly = process.argv.includes('--unit');
const root = 'dist/test';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk(root);
if (unitOnly) files = files.filter((f) => !f.includes(`${join(root, 'lab')}`));
const only = process.env.TRAVERSE_TEST_FILTER;
if (only) files = files.filter((f) => f.includes(only));

// Lab tests build namespaces and start servers; two at a time fit on two cores.
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
