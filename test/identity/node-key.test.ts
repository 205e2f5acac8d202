import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeKey, NodeKeyFileError } from '../../src/identity/node-key.js';

test('a key file readable by others is refused with the reason and the fix; its own folder is 0700', () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-key-'));
  try {
    const file = join(dir, 'state', 'agent.key');
    const key = NodeKey.loadOrCreate(file);
    assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    chmodSync(file, 0o644);
    assert.throws(() => NodeKey.loadOrCreate(file), (err: unknown) => err instanceof NodeKeyFileError && /readable by other users \(mode 0644\); run `chmod 600/.test(err.message));
    chmodSync(file, 0o600);
    assert.equal(NodeKey.loadOrCreate(file).publicHex, key.publicHex, 'fixed by hand, the same key loads');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
