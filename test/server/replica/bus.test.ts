// The bus's packing without a database: batches stay under NOTIFY's limit, keep the order, and
// parse back as event batches; a replica's own batches are recognised by their prefix; a burst of
// inbound notifications is applied in order without holding the event loop all along.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { PgBus, pack, type SerialClient } from '../../../src/server/replica/bus.js';
import { eventBatch, type ReplicaEvent } from '../../../src/server/replica/events.js';
import { randomKey, sampleNode } from '../helpers.js';

test('events are packed in order into batches under the NOTIFY limit, each a valid batch', () => {
  const self = '0123456789abcdef';
  const events: ReplicaEvent[] = [];
  for (let c = 1; c <= 300; c++) {
    events.push({ t: 'attach', c, id: c, kind: 'client', name: `dev${c}`, at: 1, remote: '198.51.100.1:4000' });
    events.push({ t: 'node', c, node: sampleNode(randomKey(), ['192.0.2.1:1', '192.0.2.2:2', '[2001:db8::1]:3']) });
  }
  const batches = pack(self, events);
  assert.ok(batches.length > 1);
  const back: ReplicaEvent[] = [];
  for (const b of batches) {
    assert.ok(Buffer.byteLength(b) <= 7800, `batch of ${Buffer.byteLength(b)} bytes`);
    assert.ok(b.startsWith(`{"r":"${self}"`));
    back.push(...eventBatch.parse(JSON.parse(b)).e);
  }
  assert.deepEqual(back, events);
});

test('an event too big for one notification travels alone (through the table)', () => {
  const huge = { t: 'attach', c: 1, id: 1, kind: 'agent', name: 'x'.repeat(9000), at: 0, remote: null } as unknown as ReplicaEvent;
  const small: ReplicaEvent = { t: 'detach', c: 2, how: 'lost' };
  const batches = pack('0123456789abcdef', [small, huge, small]);
  assert.equal(batches.length, 3);
  assert.ok(Buffer.byteLength(batches[1]!) > 7800);
});

test('a burst of inbound notifications is applied in order, letting other work in between', async () => {
  const other = 'fedcba9876543210';
  const applied: number[] = [];
  let interleaved = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const n = 400;
  const spin = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const bus = new PgBus(
    {} as SerialClient, // never used: nothing is published or fetched
    '0123456789abcdef',
    (batch) => {
      const e = batch.e[0]!;
      if (e.t === 'detach') applied.push(e.c);
      spin(1); // applying a resync's batch costs its tunnel peers' messages
      if (applied.length === n) done();
    },
    (err) => assert.fail(String(err)),
  );
  // What the replica's own connections would do meanwhile: run as soon as the loop is free.
  const tick = (): void => {
    interleaved++;
    if (applied.length < n) setImmediate(tick);
  };
  for (let c = 1; c <= n; c++) bus.received(JSON.stringify({ r: other, e: [{ t: 'detach', c, how: 'lost' }] }));
  setImmediate(tick);
  await all;
  assert.deepEqual(applied, Array.from({ length: n }, (_, i) => i + 1));
  // 400 ms of applying in 10 ms slices: the loop was free dozens of times, not once at the end.
  assert.ok(interleaved >= 10, `other work ran ${interleaved} times during the burst`);
});
