// The mapped candidate: first when it can be trusted, last (but still offered) when its address is
// private or differs from what STUN saw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Candidates } from '../../src/magicsock/candidates.js';
import type { StunClient } from '../../src/stun/client.js';

const stunSeeing = (address: string): StunClient =>
  ({ binding: () => Promise.resolve({ mapped: { family: 4, address, port: 5555 } }), rtoFor: () => 100 }) as unknown as StunClient;

test('a mapping is published first, before any STUN result', () => {
  const c = new Candidates(() => ['192.168.1.2']);
  c.setMapped({ address: '203.0.113.2', port: 6000 });
  assert.deepEqual(c.list(4000), ['203.0.113.2:6000', '192.168.1.2:4000']);
  assert.deepEqual(c.mappedTrust(), { trusted: null, reason: null });
});

test('trusted when STUN sees the same address; offered last when it sees another', async () => {
  const c = new Candidates(() => ['192.168.1.2']);
  c.setMapped({ address: '203.0.113.2', port: 6000 });
  await c.learnReflexive(stunSeeing('203.0.113.2'), [{ address: '203.0.113.10', port: 3478 }], 100);
  assert.deepEqual(c.list(4000), ['203.0.113.2:6000', '192.168.1.2:4000', '203.0.113.2:5555']);
  assert.equal(c.mappedTrust().trusted, true);
  await c.learnReflexive(stunSeeing('198.51.100.9'), [{ address: '203.0.113.10', port: 3478 }], 100);
  assert.deepEqual(c.list(4000), ['192.168.1.2:4000', '198.51.100.9:5555', '203.0.113.2:6000']);
  assert.match(c.mappedTrust().reason ?? '', /differs from the address STUN saw/);
});

test('a private external address (a carrier NAT in front) is never trusted; no mapping, no entry', () => {
  const c = new Candidates(() => ['192.168.1.2']);
  c.setMapped({ address: '100.64.0.2', port: 6000 });
  assert.deepEqual(c.list(4000), ['192.168.1.2:4000', '100.64.0.2:6000']);
  assert.equal(c.mappedTrust().trusted, false);
  c.setMapped(null);
  assert.deepEqual(c.list(4000), ['192.168.1.2:4000']);
});
