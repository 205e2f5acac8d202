// The history writer without a database: a store double that records its batches (and fails
// when told to), so batching, ordering, the bound and the retries are checked exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HistoryWriter, type HistoryKind } from '../../src/server/history.js';
import type { HistoryBatch } from '../../src/server/store/store.js';

function fakeStore(failures = 0): { batches: HistoryBatch[]; recordHistory(b: HistoryBatch): Promise<number[]> } {
  let next = 1;
  let fail = failures;
  const batches: HistoryBatch[] = [];
  return {
    batches,
    async recordHistory(b) {
      await new Promise((r) => setTimeout(r, 1));
      if (fail-- > 0) throw new Error('timeout exceeded when trying to connect');
      batches.push(b);
      return b.connects.map(() => next++);
    },
  };
}

test('a storm of connects is written in a few batches, never waited for, ids handed back in order', async () => {
  const store = fakeStore();
  const drops: string[] = [];
  const h = new HistoryWriter(store, (kind, rows) => drops.push(`${kind}:${rows}`), { maxBatch: 1000 });
  const refs = Array.from({ length: 2500 }, (_, i) => h.connected(i + 1, 100 + i, null, 'r1'));
  assert.equal(refs[0]!.state, 'queued', 'nothing is written while the connects are handled');
  await h.drain();
  assert.deepEqual(store.batches.map((b) => b.connects.length), [1000, 1000, 500]);
  assert.deepEqual(refs.slice(0, 3).map((r) => [r.id, r.state]), [[1, 'written'], [2, 'written'], [3, 'written']]);
  assert.equal(refs[2499]!.id, 2500);
  assert.deepEqual(drops, []);
});

test('the end of a connection waits for its record; path reports go with the next batch', async () => {
  const store = fakeStore();
  const h = new HistoryWriter(store, () => assert.fail('nothing is dropped'));
  const one = h.connected(1, 10, '192.0.2.1:1', '');
  const two = h.connected(2, 11, null, '');
  h.disconnected(one, 12, 'disconnected: bye');
  h.path(1, 2, { kind: 'relay' }, 13);
  await h.drain();
  // The end of `one` cannot be in the batch that creates it: it leaves in the next, with its id.
  assert.equal(store.batches.length, 2);
  assert.deepEqual(store.batches[0]!.connects.map((c) => c.identityId), [1, 2]);
  assert.deepEqual(store.batches[1]!.disconnects, [{ id: one.id, at: 12, reason: 'disconnected: bye' }]);
  assert.equal(store.batches[1]!.paths.length, 1);
  assert.equal(two.state, 'written');
  // Ended later, on its own.
  h.disconnected(two, 20, 'lost: no answer to ping');
  await h.drain();
  assert.deepEqual(store.batches[2]!.disconnects, [{ id: two.id, at: 20, reason: 'lost: no answer to ping' }]);
});

test('a refused batch is written again; after the last attempt its rows are dropped and counted', async () => {
  const flaky = fakeStore(2);
  const h = new HistoryWriter(flaky, () => assert.fail('written on the third attempt'), { attempts: 3, retryMs: 5 });
  const ref = h.connected(1, 10, null, '');
  await h.drain();
  assert.deepEqual([ref.state, flaky.batches.length], ['written', 1]);

  const down = fakeStore(100);
  const drops: [HistoryKind, number][] = [];
  const h2 = new HistoryWriter(down, (kind, rows) => drops.push([kind, rows]), { attempts: 2, retryMs: 5 });
  const lost = h2.connected(1, 10, null, '');
  h2.path(1, 2, { kind: 'relay' }, 11);
  await h2.drain();
  assert.equal(lost.state, 'dropped');
  assert.deepEqual(drops, [['connect', 1], ['path', 1]]);
  // The end of a connection whose record was dropped is not written (there is no row to end).
  h2.disconnected(lost, 20, 'bye');
  await h2.drain();
  assert.deepEqual(drops, [['connect', 1], ['path', 1]]);
});

test('the queue is bounded: beyond it rows are dropped and counted, never blocking the caller', async () => {
  const store = fakeStore();
  const drops: [HistoryKind, number][] = [];
  const h = new HistoryWriter(store, (kind, rows) => drops.push([kind, rows]), { maxQueued: 10 });
  const refs = Array.from({ length: 12 }, (_, i) => h.connected(i + 1, i, null, ''));
  assert.deepEqual(drops, [['connect', 1], ['connect', 1]]);
  assert.deepEqual(refs.slice(10).map((r) => r.state), ['dropped', 'dropped']);
  await h.drain();
  assert.equal(store.batches[0]!.connects.length, 10);
});

test('a row queued while the writer winds down is still written (every microtask of the window)', async () => {
  for (let ticks = 0; ticks < 12; ticks++) {
    let release = (): void => {};
    const batches: HistoryBatch[] = [];
    const store = {
      recordHistory(b: HistoryBatch): Promise<number[]> {
        batches.push(b);
        return new Promise((r) => (release = () => r(b.connects.map((_, i) => i + 1))));
      },
    };
    const h = new HistoryWriter(store, () => assert.fail('nothing is dropped'));
    h.connected(1, 10, null, '');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    release();
    for (let i = 0; i < ticks; i++) await Promise.resolve();
    h.path(1, 2, { kind: 'relay' }, 11);
    await new Promise((r) => setTimeout(r, 5));
    release();
    await h.drain();
    assert.equal(h.queued, 0, `${ticks} microtasks after the batch: the path row was left in the queue`);
    assert.equal(batches.flatMap((b) => b.paths).length, 1);
  }
});

test('finish() at shutdown: a refused batch is not retried, and the rows behind it are dropped with it', async () => {
  const down = fakeStore(100);
  const drops: [HistoryKind, number][] = [];
  // Retries an hour apart: finish() must not wait for one.
  const h = new HistoryWriter(down, (kind, rows) => drops.push([kind, rows]), { maxBatch: 2, attempts: 5, retryMs: 3_600_000 });
  const refs = [1, 2, 3, 4, 5].map((i) => h.connected(i, 10 + i, null, ''));
  h.disconnected(refs[4]!, 20, 'bye'); // the end of a record that is dropped: no row, not counted
  h.path(1, 2, { kind: 'relay' }, 21);
  const started = performance.now();
  await h.finish();
  assert.ok(performance.now() - started < 1000, 'finish() did not wait for a retry');
  assert.deepEqual(
    refs.map((r) => r.state),
    ['dropped', 'dropped', 'dropped', 'dropped', 'dropped'],
  );
  assert.equal(h.queued, 0);
  // The first batch (2 connects) once, then the rest at once: 3 connects and the path report.
  assert.deepEqual(drops, [['connect', 2], ['connect', 3], ['path', 1]]);
});
