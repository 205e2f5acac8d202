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
