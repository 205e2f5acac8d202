// `traverse server`'s replica flags: what they turn into, and the one-line errors for wrong ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replicationFrom } from '../../src/cli/replica-options.js';
import { runCli } from '../helpers/cli.js';

const db = 'postgres://traverse@127.0.0.1:5432/traverse';

test('with --database the server is a replica; the mesh flags and their env twins are passed on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-mesh-'));
  const keyFile = join(dir, 'mesh.key');
  writeFileSync(keyFile, 'ab'.repeat(32) + '\n');
  assert.deepEqual(replicationFrom({}, db), { databaseUrl: db });
  assert.equal(replicationFrom({}, undefined), undefined);
  const r = replicationFrom({ meshUrl: 'http://10.0.0.11:8080', meshKeyFile: keyFile }, db);
  assert.equal(r?.meshUrl, 'http://10.0.0.11:8080');
  assert.deepEqual(r?.meshKey, Buffer.alloc(32, 0xab));
  process.env.TRAVERSE_MESH_URL = 'https://replica-2.example:8443';
  process.env.TRAVERSE_MESH_KEY_FILE = keyFile;
  try {
    const fromEnv = replicationFrom({}, db);
    assert.equal(fromEnv?.meshUrl, 'https://replica-2.example:8443');
    assert.equal(fromEnv?.meshKey?.length, 32);
  } finally {
    delete process.env.TRAVERSE_MESH_URL;
    delete process.env.TRAVERSE_MESH_KEY_FILE;
  }
});

test('wrong mesh flags are usage errors that say what to do', () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-mesh-'));
  const short = join(dir, 'short.key');
  writeFileSync(short, 'abcd');
  assert.throws(() => replicationFrom({ meshUrl: 'http://x:1' }, undefined), /are for replicas: add --database postgres:\/\//);
  assert.throws(() => replicationFrom({ meshUrl: 'not a url' }, db), /is not a URL; give http:\/\/HOST:PORT/);
  assert.throws(() => replicationFrom({ meshUrl: 'ftp://x:1' }, db), /must be http\(s\):\/\/HOST:PORT with no path/);
  assert.throws(() => replicationFrom({ meshUrl: 'http://0.0.0.0:8080' }, db), /wildcard address/);
  assert.throws(() => replicationFrom({ meshKeyFile: join(dir, 'missing') }, db), /--mesh-key-file .*missing: no such file/);
  assert.throws(() => replicationFrom({ meshKeyFile: short }, db), /the mesh key is 2 bytes; it must be at least 32/);
});

test('traverse server: a mesh flag without --database exits 2 with one line', async () => {
  const r = await runCli(['server', '--listen', '127.0.0.1:0', '--mesh-url', 'http://10.0.0.11:8080'], { env: { TRAVERSE_DATABASE_URL: '' } });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'traverse: --mesh-url and --mesh-key-file are for replicas: add --database postgres://... (several servers on one database)\n');
});
