// The database holds token hashes and connection history: its folder and files are the owner's only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import { DATABASE_FILE } from '../../src/server/store/sqlite.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

test('a new data folder is 0700 and every database file in it 0600', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'traverse-modes-'));
  const previous = process.umask(0o022); // the usual umask, which would give 0755 and 0644
  try {
    const dir = join(parent, 'data');
    const store = SqliteStore.open(dir);
    await store.ensureIdentity('agent', 'dev-box', Date.now()); // a write: the WAL exists now
    assert.equal(mode(dir), 0o700);
    const files = readdirSync(dir);
    assert.ok(files.some((f) => f.endsWith('-wal')), `WAL present: ${files.join(', ')}`);
    for (const f of files) assert.equal(mode(join(dir, f)), 0o600, f);
    await store.close();
  } finally {
    process.umask(previous);
    rmSync(parent, { recursive: true, force: true });
  }
});

test('a database left readable by others is made 0600 when opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-modes-'));
  try {
    const file = join(dir, DATABASE_FILE);
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    const store = SqliteStore.open(dir);
    assert.equal(mode(file), 0o600);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
