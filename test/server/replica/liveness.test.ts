// The heartbeat rule without a database or a clock: readings of the heartbeat table in, verdicts out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIVENESS, Liveness, OwnBeat, deadAfterMs } from '../../../src/server/replica/liveness.js';

const beat = (id: string, ageMs: number) => ({ id, ageMs, meshUrl: `http://${id}:8080` });

test('a replica that missed three 2-second beats is dead; two missed beats are not enough', () => {
  assert.equal(deadAfterMs(DEFAULT_LIVENESS), 6000);
  const l = new Liveness('me');
  assert.deepEqual(l.observe([beat('me', 0), beat('r2', 100)]), [{ kind: 'joined', id: 'r2', meshUrl: 'http://r2:8080' }]);
  assert.deepEqual(l.observe([beat('r2', 4000)]), []);
  assert.deepEqual(l.observe([beat('r2', 6000)]), []);
  assert.deepEqual(l.observe([beat('r2', 6001)]), [{ kind: 'dead', id: 'r2', silentMs: 6001 }]);
  // Reported once, not on every reading while its row lingers.
  assert.deepEqual(l.observe([beat('r2', 8000)]), []);
  assert.equal(l.isAlive('r2'), false);
});

test('a dead replica that beats again joins again (it must republish its nodes)', () => {
  const l = new Liveness('me');
  l.observe([beat('r2', 0)]);
  l.observe([beat('r2', 7000)]);
  assert.deepEqual(l.observe([beat('r2', 10)]), [{ kind: 'joined', id: 'r2', meshUrl: 'http://r2:8080' }]);
});

test('a replica whose row disappears has left; a stale row seen first is reported dead once', () => {
  const l = new Liveness('me');
  l.observe([beat('r2', 0), beat('r3', 0)]);
  assert.deepEqual(l.observe([beat('r3', 0)]), [{ kind: 'left', id: 'r2' }]);
  assert.deepEqual(l.observe([beat('r3', 0), beat('r4', 60_000)]), [{ kind: 'dead', id: 'r4', silentMs: 60_000 }]);
  assert.deepEqual(l.observe([beat('r3', 0)]), []);
  assert.equal(l.forget('r3'), true);
  assert.deepEqual([...l.peers.keys()], []);
});

test('a replica that cannot write its heartbeat gives up one beat before the others would call it dead', () => {
  const own = new OwnBeat(0);
  assert.equal(own.lost(3999), false);
  assert.equal(own.lost(4000), true);
  own.succeeded(4100);
  assert.equal(own.lost(5000), false);
});

test('only the database clock counts: a late answer to our own beat is not silence, a beat counts from when it was sent', () => {
  const own = new OwnBeat(0);
  // The beat sent at 2000 was stamped by the database then, even if its answer took 3.1 s.
  own.succeeded(2000);
  assert.equal(own.lost(5100), false);
  assert.equal(own.lost(5999), false);
  assert.equal(own.lost(6000), true);
  // An older beat answered last does not move the count back.
  own.succeeded(1000);
  assert.equal(own.lost(5999), false);
});

test('a stall the database (or the machine) put on our own beats too gives the others as much longer, at most another 6 s', () => {
  const l = new Liveness('me');
  l.observe([beat('r2', 0)]);
  // Our own beats, stamped by the database every 2 s: no shared stall, the 6 s rule as is.
  for (const at of [10_000, 12_000, 14_000]) l.beat(at);
  assert.equal(l.sharedStallMs(), 0);
  assert.deepEqual(l.observe([beat('r2', 6500)]), [{ kind: 'dead', id: 'r2', silentMs: 6500 }]);
  // r2 comes back; then the database takes 3.1 s longer than due to stamp one of our beats:
  // r2's beats were held up by the same stall, and 6.5 s of silence is not yet death.
  l.observe([beat('r2', 0)]);
  l.beat(19_100);
  assert.equal(l.sharedStallMs(), 3100);
  assert.deepEqual(l.observe([beat('r2', 6500)]), []);
  assert.deepEqual(l.observe([beat('r2', 9101)]), [{ kind: 'dead', id: 'r2', silentMs: 9101 }]);
  // The allowance is bounded (a replica that is gone is dead within 12 s) and forgotten once our
  // beats are on time again (the stall is more than three beats back).
  l.observe([beat('r2', 0)]);
  l.beat(60_000);
  assert.equal(l.sharedStallMs(), 6000);
  assert.deepEqual(l.observe([beat('r2', 12_001)]), [{ kind: 'dead', id: 'r2', silentMs: 12_001 }]);
  for (const at of [62_000, 64_000, 66_000, 68_000]) l.beat(at);
  assert.equal(l.sharedStallMs(), 0);
});
