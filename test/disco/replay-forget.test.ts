// A peer's replay window outlives `forget`: packets captured before its key left and came back
// stay replays, a restarted sender (clock-based counters) still gets through, and the retained
// windows are bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeKey } from '../../src/identity/node-key.js';
import { DiscoSealer, RETAINED_REPLAY_WINDOWS, type DiscoMessage } from '../../src/disco/index.js';

const ping = (n: number): DiscoMessage => ({ type: 'ping', txid: new Uint8Array(12).fill(n) });
const all = (): boolean => true;

test('a packet captured before forget is still a replay after the key comes back', () => {
  const a = NodeKey.generate();
  const b = NodeKey.generate();
  const sa = new DiscoSealer(a);
  const sb = new DiscoSealer(b);
  const captured = [1, 2, 3].map((n) => sa.seal(b.publicHex, ping(n)));
  for (const p of captured) assert.ok(sb.open(p, all), 'fresh the first time');
  sb.forget(a.publicHex); // the coordinator said A disconnected
  for (const p of captured) assert.equal(sb.open(p, all), null, 'replayed after the key came back');
  // A's own next packet passes, as does a restarted A (a new sealer, counters from the clock).
  assert.ok(sb.open(sa.seal(b.publicHex, ping(4)), all));
  const restarted = new DiscoSealer(a, () => Date.now() + 5);
  assert.ok(sb.open(restarted.seal(b.publicHex, ping(5)), all));
});

test('a packet captured but never delivered before forget is still accepted once (it is new), then not', () => {
  const a = NodeKey.generate();
  const b = NodeKey.generate();
  const sa = new DiscoSealer(a);
  const sb = new DiscoSealer(b);
  assert.ok(sb.open(sa.seal(b.publicHex, ping(1)), all));
  const late = sa.seal(b.publicHex, ping(2));
  sb.forget(a.publicHex);
  assert.ok(sb.open(late, all));
  sb.forget(a.publicHex);
  assert.equal(sb.open(late, all), null);
});

test('retained windows are bounded: the oldest forgotten keys are dropped first', () => {
  const b = NodeKey.generate();
  const sb = new DiscoSealer(b);
  const first = NodeKey.generate();
  const sf = new DiscoSealer(first);
  const old = sf.seal(b.publicHex, ping(1));
  assert.ok(sb.open(old, all));
  sb.forget(first.publicHex);
  // A key forgotten and back again moves to the newest end (it is not evicted by the others).
  const keep = NodeKey.generate();
  const sk = new DiscoSealer(keep);
  const kept = sk.seal(b.publicHex, ping(1));
  assert.ok(sb.open(kept, all));
  sb.forget(keep.publicHex);
  // Fill the retained set with other keys: public keys are enough (no crypto needed to forget),
  // but forget only retains keys it knew, so make each known by sealing to it.
  for (let i = 0; i < RETAINED_REPLAY_WINDOWS - 1; i++) {
    const hex = NodeKey.generate().publicHex;
    sb.seal(hex, ping(0));
    sb.forget(hex);
  }
  assert.equal(sb.open(kept, all), null, 'within the last 4096: still a replay');
  sb.forget(keep.publicHex);
  assert.ok(sb.open(old, all), 'the oldest was evicted: its window starts over');
});
