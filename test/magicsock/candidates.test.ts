// Our own candidate endpoints: where each comes from, in which order they are published, and the
// bound on addresses peers saw us at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Candidates, mergeEndpoints } from '../../src/magicsock/candidates.js';
import type { StunClient, StunTarget } from '../../src/stun/client.js';

/** A STUN client that maps each server to a fixed answer, or fails. */
function fakeStun(answers: Record<string, { address: string; port: number } | null>): StunClient {
  return {
    rtoFor: () => 250,
    binding: (s: StunTarget) => {
      const a = answers[`${s.address}:${s.port}`];
      return a ? Promise.resolve({ mapped: a }) : Promise.reject(new Error('timeout'));
    },
  } as unknown as StunClient;
}

test('mergeEndpoints: interfaces with the port first, then reflexive, then observed; no duplicates; capped', () => {
  assert.deepEqual(mergeEndpoints(['192.168.1.5', '2001:db8::5'], 41641, ['203.0.113.1:41641'], ['203.0.113.1:50000', '203.0.113.1:41641']), [
    '192.168.1.5:41641',
    '[2001:db8::5]:41641',
    '203.0.113.1:41641',
    '203.0.113.1:50000',
  ]);
  assert.equal(mergeEndpoints(Array.from({ length: 40 }, (_, i) => `10.0.0.${i}`), 1, [], []).length, 32);
});

test('Candidates: STUN answers become reflexive candidates (deduplicated, failures add nothing), and a later round replaces them', async () => {
  const c = new Candidates(() => ['192.168.1.5']);
  const servers = [
    { address: '198.51.100.1', port: 3478 },
    { address: '198.51.100.2', port: 3478 },
    { address: '198.51.100.3', port: 3478 },
  ];
  await c.learnReflexive(
    fakeStun({ '198.51.100.1:3478': { address: '203.0.113.1', port: 41641 }, '198.51.100.2:3478': { address: '203.0.113.1', port: 41641 }, '198.51.100.3:3478': null }),
    servers,
    100,
  );
  assert.deepEqual(c.list(41641), ['192.168.1.5:41641', '203.0.113.1:41641']);
  await c.learnReflexive(fakeStun({ '198.51.100.1:3478': { address: '203.0.113.9', port: 1000 } }), servers, 100);
  assert.deepEqual(c.list(41641), ['192.168.1.5:41641', '203.0.113.9:1000'], 'a mapping that moved is forgotten');
});

test('Candidates: observed addresses are new only once and only if not published; the latest four are kept', () => {
  const c = new Candidates(() => []);
  assert.equal(c.observed('203.0.113.1:41641', ['203.0.113.1:41641']), false, 'already published');
  assert.equal(c.observed('203.0.113.1:1', []), true);
  assert.equal(c.observed('203.0.113.1:1', []), false, 'seen before');
  for (const p of [2, 3, 4, 5]) assert.equal(c.observed(`203.0.113.1:${p}`, []), true);
  assert.deepEqual(c.list(9), ['203.0.113.1:5', '203.0.113.1:4', '203.0.113.1:3', '203.0.113.1:2']);
});

test('Candidates: the interface source is asked each time, so a new address shows at the next list', () => {
  let addrs = ['192.168.1.5'];
  const c = new Candidates(() => addrs);
  assert.deepEqual(c.list(7), ['192.168.1.5:7']);
  addrs = ['10.0.0.2'];
  assert.deepEqual(c.list(7), ['10.0.0.2:7']);
});
