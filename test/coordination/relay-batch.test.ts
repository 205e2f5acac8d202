// Relay batches (relay frame format 2): the codec, decoded strictly, and the per-turn batcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_RELAY_PAYLOAD, NODE_KEY_BYTES } from '../../src/coordination/protocol.js';
import {
  asksForRelayBatches,
  batchEntryBytes,
  decodeRelayBatch,
  encodeRelayBatch,
  MAX_BATCH_BYTES,
  MAX_BATCH_DATAGRAMS,
  MAX_BATCH_FRAME,
  RELAY_FRAMES_HEADER,
  type RelayBatch,
} from '../../src/coordination/relay-batch.js';
import { RelayBatcher } from '../../src/coordination/relay-batcher.js';

const KEY = 'ab'.repeat(32);

function decoded(frame: Buffer): RelayBatch {
  const d = decodeRelayBatch(frame);
  if (typeof d === 'string') throw new Error(`not a batch: ${d}`);
  return d;
}

/** Payloads within a batch's bounds (1..MAX_BATCH_DATAGRAMS, each 1..MAX_RELAY_PAYLOAD, MAX_BATCH_BYTES in all). */
const payloads = fc
  .array(fc.uint8Array({ minLength: 1, maxLength: MAX_RELAY_PAYLOAD }), { minLength: 1, maxLength: MAX_BATCH_DATAGRAMS })
  .filter((ps) => ps.reduce((n, p) => n + batchEntryBytes(p.length), 0) <= MAX_BATCH_BYTES);

test('relay batch: what is encoded decodes to the same key and datagrams, in order', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: NODE_KEY_BYTES, maxLength: NODE_KEY_BYTES }), payloads, (key, ps) => {
      const frame = encodeRelayBatch(key, ps);
      const d = decoded(frame);
      assert.ok(d.key.equals(key));
      assert.deepEqual(d.payloads.map((p) => [...p]), ps.map((p) => [...p]));
      assert.equal(d.payloadBytes, ps.reduce((n, p) => n + p.length, 0));
      assert.ok(frame.length <= MAX_BATCH_FRAME);
    }),
    { numRuns: 200 },
  );
});

test('relay batch: any bytes decode to a batch that encodes back to exactly them, or to a stated problem; never a throw', () => {
  const entry = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 64 }));
  // Frames near the layout (a key, lengths that may lie) and plain noise.
  const nearBatch = fc.tuple(fc.uint8Array({ minLength: NODE_KEY_BYTES, maxLength: NODE_KEY_BYTES }), fc.array(entry, { maxLength: 80 }), fc.uint8Array({ maxLength: 3 })).map(([key, es, tail]) => {
    const parts = [Buffer.from(key)];
    for (const [len, body] of es) {
      const l = Buffer.alloc(2);
      l.writeUInt16BE(len % 3 === 0 ? body.length : len);
      parts.push(l, Buffer.from(body));
    }
    parts.push(Buffer.from(tail));
    return Buffer.concat(parts);
  });
  fc.assert(
    fc.property(fc.oneof(nearBatch, fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b))), (frame) => {
      const d = decodeRelayBatch(frame);
      if (typeof d === 'string') {
        assert.match(d, /^(too-short|too-long|too-many|empty-datagram|datagram-too-long|truncated)$/);
        return;
      }
      assert.ok(encodeRelayBatch(d.key, d.payloads).equals(frame), 'decoding is strict: only a canonical frame passes');
    }),
    { numRuns: 500 },
  );
});

test('relay batch: each kind of malformed frame is named', () => {
  const good = encodeRelayBatch(KEY, [Buffer.from('one'), Buffer.from('two')]);
  assert.equal(decodeRelayBatch(good.subarray(0, NODE_KEY_BYTES + 2)), 'too-short');
  assert.equal(decodeRelayBatch(good.subarray(0, good.length - 1)), 'truncated');
  assert.equal(decodeRelayBatch(Buffer.concat([good, Buffer.from([0])])), 'truncated');
  const empty = Buffer.from(good);
  empty.writeUInt16BE(0, NODE_KEY_BYTES);
  assert.equal(decodeRelayBatch(empty), 'empty-datagram');
  const long = Buffer.concat([Buffer.alloc(NODE_KEY_BYTES), Buffer.from([0x10, 0x01]), Buffer.alloc(MAX_RELAY_PAYLOAD + 1)]);
  assert.equal(decodeRelayBatch(long), 'datagram-too-long');
  const many = encodeRelayBatch(KEY, Array.from({ length: MAX_BATCH_DATAGRAMS }, () => Buffer.from('x')));
  assert.equal(decoded(many).payloads.length, MAX_BATCH_DATAGRAMS);
  assert.equal(decodeRelayBatch(Buffer.concat([many, Buffer.from([0, 1, 120])])), 'too-many');
  assert.equal(decodeRelayBatch(Buffer.alloc(MAX_BATCH_FRAME + 1, 1)), 'too-long');
});

test('relay batch: encoding outside the bounds is a bug and throws', () => {
  assert.throws(() => encodeRelayBatch(KEY, []), RangeError);
  assert.throws(() => encodeRelayBatch(KEY, [Buffer.alloc(0)]), RangeError);
  assert.throws(() => encodeRelayBatch(KEY, [Buffer.alloc(MAX_RELAY_PAYLOAD + 1)]), RangeError);
  assert.throws(() => encodeRelayBatch(KEY, Array.from({ length: MAX_BATCH_DATAGRAMS + 1 }, () => Buffer.from('x'))), RangeError);
  assert.throws(() => encodeRelayBatch(KEY, Array.from({ length: 17 }, () => Buffer.alloc(MAX_RELAY_PAYLOAD))), RangeError);
  assert.throws(() => encodeRelayBatch('abc', [Buffer.from('x')]), RangeError);
});

test('relay batch: only a node that asks for format 2 gets it', () => {
  assert.equal(asksForRelayBatches({ [RELAY_FRAMES_HEADER]: '2' }), true);
  assert.equal(asksForRelayBatches({ [RELAY_FRAMES_HEADER]: ['2', '3'] }), true);
  assert.equal(asksForRelayBatches({ [RELAY_FRAMES_HEADER]: '3' }), false);
  assert.equal(asksForRelayBatches({}), false);
});

test('relay batcher: one frame per destination at the end of the turn, full batches at once', () => {
  const sent: Buffer[] = [];
  const deferred: (() => void)[] = [];
  const b = new RelayBatcher({ send: (f) => sent.push(f), defer: (fn) => deferred.push(fn) });
  const other = 'cd'.repeat(32);
  b.push(KEY, Buffer.from('a'));
  b.push(other, Buffer.from('b'));
  b.push(KEY, Buffer.from('c'));
  assert.equal(sent.length, 0, 'nothing before the end of the turn');
  assert.equal(deferred.length, 1, 'one flush per turn');
  deferred.shift()!();
  assert.equal(sent.length, 2);
  const byKey = new Map(sent.map((f) => [decoded(f).key.toString('hex'), decoded(f).payloads.map(String)]));
  assert.deepEqual(byKey.get(KEY), ['a', 'c']);
  assert.deepEqual(byKey.get(other), ['b']);
  // Bounded: the 65th datagram starts a new batch and the full one goes at once.
  sent.length = 0;
  for (let i = 0; i < MAX_BATCH_DATAGRAMS + 1; i++) b.push(KEY, Buffer.from([i + 1]));
  assert.equal(sent.length, 1);
  assert.equal(decoded(sent[0]!).payloads.length, MAX_BATCH_DATAGRAMS);
  // ... and so does one that would pass MAX_BATCH_BYTES.
  b.flush();
  sent.length = 0;
  const big = Buffer.alloc(MAX_RELAY_PAYLOAD, 9);
  const fit = Math.floor(MAX_BATCH_BYTES / batchEntryBytes(big.length));
  for (let i = 0; i <= fit; i++) b.push(KEY, big);
  assert.equal(sent.length, 1);
  assert.equal(decoded(sent[0]!).payloads.length, fit);
  assert.equal(b.waiting, 1);
  b.clear();
  assert.equal(b.waiting, 0);
  for (const fn of deferred) fn();
  assert.equal(sent.length, 1, 'what was cleared is not sent');
});
