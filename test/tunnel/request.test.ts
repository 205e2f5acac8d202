// The frame version named beside a stream's request and answer: two ends that differ say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wireMismatch, wireVersionOf } from '../../src/tunnel/request.js';

test('a request or answer without a version is from a traverse before version 2', () => {
  assert.equal(wireVersionOf({ kind: 'tcp', target: '127.0.0.1:22' }), 1);
  assert.equal(wireVersionOf({ ok: true, wire: 2 }), 2);
  for (const odd of [null, 'x', 7, { wire: '2' }, { wire: 2.5 }]) assert.equal(wireVersionOf(odd), 1);
});

test('a version mismatch names both versions and which end to update', () => {
  assert.equal(wireMismatch(2, 2), null);
  assert.equal(wireMismatch(1, 2), 'the agent speaks stream protocol v2, the client v1: run the same traverse version on both ends (update the client)');
  assert.equal(wireMismatch(2, 1), 'the agent speaks stream protocol v1, the client v2: run the same traverse version on both ends (update the agent)');
  // It fits a stream-refuse reason (200 bytes).
  assert.ok(Buffer.byteLength(wireMismatch(1, 2)!) <= 200);
});
