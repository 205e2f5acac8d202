// `traverse --version` prints the version in package.json, the one that was installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { packageVersion } from '../../src/cli/self.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string; name: string; bin: Record<string, string> };

test('--version prints package.json version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
  assert.equal(packageVersion(), pkg.version);
});

test('the package is not named like the unrelated npm package "traverse", and installs the command traverse', () => {
  assert.notEqual(pkg.name, 'traverse');
  assert.deepEqual(Object.keys(pkg.bin), ['traverse']);
});
