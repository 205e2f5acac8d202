// Path choice between a peer's answering endpoints: LAN first, lower round trip, and no flapping
// between IPv4 and IPv6 paths of about the same round trip. Pure: the clock is a number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choosePath, DEFAULT_CHOICE_RULES, endpointFamily, type PathOption } from '../../src/magicsock/path-choice.js';
import { PeerPaths } from '../../src/magicsock/peer-paths.js';

/** A ping sent at `at` to `endpoint` and its pong `rtt` ms later. */
function answer(p: PeerPaths, tx: { n: number }, endpoint: string, at: number, rtt: number): void {
  const id = String(tx.n++);
  p.pingSent(id, endpoint, at);
  p.pongReceived(id, endpoint, at + rtt);
}

const opt = (endpoint: string, latencyMs: number | null, priv = false): PathOption => ({ endpoint, latencyMs, private: priv });

test('endpointFamily: IPv4, bracketed IPv6, and not an endpoint', () => {
  assert.equal(endpointFamily('203.0.113.5:4000'), 4);
  assert.equal(endpointFamily('[2001:db8:1::5]:4000'), 6);
  assert.equal(endpointFamily('2001:db8:1::5'), 0);
});

test('choosePath: nothing trusted is no path; with no current path the best ranked wins', () => {
  assert.equal(choosePath(null, [], 0, null), null);
  const v4 = opt('203.0.113.5:4000', 20);
  const v6 = opt('[2001:db8:1::5]:4000', 10);
  assert.equal(choosePath(null, [v4, v6], 0, null), v6);
  const lan = opt('192.168.1.5:4000', 30, true);
  assert.equal(choosePath(null, [v4, v6, lan], 0, null), lan, 'a LAN path first, whatever its round trip');
});

test('choosePath: a current path that stopped answering (not trusted) is replaced', () => {
  const v4 = opt('203.0.113.5:4000', 5);
  const v6 = opt('[2001:db8:1::5]:4000', 50);
  assert.equal(choosePath(v4, [v6], 1000, 900), v6, 'even within the cross-family hold');
});

test('choosePath: same family moves only for a clearly lower round trip', () => {
  const a = opt('203.0.113.5:4000', 10);
  assert.equal(choosePath(a, [a, opt('203.0.113.5:4001', 9)], 100_000, 0), a, '10% less: jitter');
  assert.equal(choosePath(a, [a, opt('203.0.113.5:4001', 8.5)], 100_000, 0), a, '15% less, 1.5 ms: still kept');
  const b = opt('203.0.113.5:4001', 7);
  assert.equal(choosePath(a, [a, b], 100_000, 0), b, '30% and 3 ms less: moves');
});

test('choosePath: across families the bar is higher, and no move back within the hold', () => {
  const r = DEFAULT_CHOICE_RULES;
  const v4 = opt('203.0.113.5:4000', 20);
  const v6same = opt('[2001:db8:1::5]:4000', 15); // 25% less: would move within a family
  assert.equal(choosePath(v4, [v4, v6same], 100_000, 0), v4);
  const v6fast = opt('[2001:db8:1::5]:4000', 10); // 50% and 10 ms less
  assert.equal(choosePath(v4, [v4, v6fast], 100_000, 0), v6fast, 'clearly faster, hold long over');
  assert.equal(choosePath(v4, [v4, v6fast], 100_000, 100_000 - r.crossFamilyHoldMs + 1), v4, 'within the hold: kept');
  assert.equal(choosePath(v4, [v4, v6fast], 100_000, 100_000 - r.crossFamilyHoldMs), v6fast, 'the hold just over');
});

test('choosePath: within the hold, a better path of the current family still wins on the lower bar', () => {
  const v4 = opt('203.0.113.5:4000', 20);
  const v4b = opt('203.0.113.5:4001', 12);
  const v6 = opt('[2001:db8:1::5]:4000', 5);
  assert.equal(choosePath(v4, [v4, v4b, v6], 1000, 900), v4b);
});

test('PeerPaths: IPv4 and IPv6 paths whose round trips cross back and forth do not flap', () => {
  const p = new PeerPaths({ directAllowed: true, trustMs: 6500 });
  const v4 = '203.0.113.5:4000';
  const v6 = '[2001:db8:1::5]:4000';
  p.setPublished([v4, v6]);
  let now = 0;
  const tx = { n: 0 };
  answer(p, tx, v4, now, 10);
  answer(p, tx, v6, now, 11);
  const first = p.current(now + 20);
  assert.deepEqual(first, { kind: 'direct', endpoint: v4 });
  const seen = new Set<string>();
  // Two minutes of samples in which each family is ahead in turn by ~20%.
  for (let i = 0; i < 120; i++) {
    now += 1000;
    const v4ahead = Math.floor(i / 10) % 2 === 0;
    answer(p, tx, v4, now, v4ahead ? 10 : 12.5);
    answer(p, tx, v6, now, v4ahead ? 12.5 : 10);
    const cur = p.current(now + 20);
    if (cur.kind === 'direct') seen.add(cur.endpoint);
  }
  assert.deepEqual([...seen], [v4], 'stayed on IPv4 throughout');
});

test('PeerPaths: a much faster IPv6 path takes over from IPv4 once the hold is over', () => {
  const p = new PeerPaths({ directAllowed: true, trustMs: 6500 });
  const v4 = '203.0.113.5:4000';
  const v6 = '[2001:db8:1::5]:4000';
  p.setPublished([v4, v6]);
  const tx = { n: 0 };
  answer(p, tx, v4, 0, 40);
  assert.deepEqual(p.current(50), { kind: 'direct', endpoint: v4 });
  for (let t = 1000; t <= 40_000; t += 1000) {
    answer(p, tx, v4, t, 40);
    answer(p, tx, v6, t, 8);
    if (t < DEFAULT_CHOICE_RULES.crossFamilyHoldMs) assert.deepEqual(p.current(t + 50), { kind: 'direct', endpoint: v4 }, `at ${t}`);
  }
  assert.deepEqual(p.current(40_100), { kind: 'direct', endpoint: v6 });
});
