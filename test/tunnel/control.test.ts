// The stream-control codec: every message round-trips, anything malformed decodes to null.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_OPAQUE_BYTES } from '../../src/disco/index.js';
import {
  ControlType,
  decodeControl,
  encodeControl,
  LANE_TOKEN_BYTES,
  MAX_HANDSHAKE_BYTES,
  MAX_REFUSE_REASON_BYTES,
  type StreamControl,
} from '../../src/tunnel/control.js';

const token = new Uint8Array(LANE_TOKEN_BYTES).fill(7);

const examples: StreamControl[] = [
  { type: 'stream-open', sid: 0xfedcba9876543210n, carrier: 0xffffffff, handshake: new Uint8Array([1, 2, 3]) },
  { type: 'stream-open', sid: 0n, carrier: 0, handshake: new Uint8Array(MAX_HANDSHAKE_BYTES).fill(9) },
  { type: 'stream-accept', sid: 7n, carrier: 8, handshake: new Uint8Array([4]) },
  { type: 'stream-refuse', sid: 1n, reason: 'no' },
  { type: 'stream-refuse', sid: 1n, reason: '' },
  { type: 'stream-refuse', sid: 1n, reason: 'é'.repeat(MAX_REFUSE_REASON_BYTES / 2) },
  { type: 'carrier', sid: 0xffffffffffffffffn, carrier: 3 },
  { type: 'carrier-ack', sid: 2n, carrier: 3, yours: 4 },
  { type: 'tcp-lane', sid: 5n, port: 40000, token },
  { type: 'tcp-lane-ack', sid: 6n, port: 65535, listenPort: 2, token },
  { type: 'relay-lane', sid: 7n, lane: new Uint8Array(LANE_TOKEN_BYTES).fill(3), token },
  { type: 'relay-lane-ack', sid: 8n, lane: new Uint8Array(LANE_TOKEN_BYTES).fill(4), token },
  { type: 'lane-claim', sid: 9n, spare: 0xfedcba9876543210n },
];

const sid = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 1, max: 65535 });
const laneToken = fc.uint8Array({ minLength: LANE_TOKEN_BYTES, maxLength: LANE_TOKEN_BYTES });
const handshake = fc.uint8Array({ minLength: 1, maxLength: MAX_HANDSHAKE_BYTES });

// Plain objects, as the decoder makes (fc.record's own have no prototype).
const plain = { noNullPrototype: true } as const;
const anyControl: fc.Arbitrary<StreamControl> = fc.oneof(
  fc.record({ type: fc.constant('stream-open' as const), sid, carrier: u32, handshake }, plain),
  fc.record({ type: fc.constant('stream-accept' as const), sid, carrier: u32, handshake }, plain),
  // ASCII: a reason cut at MAX_REFUSE_REASON_BYTES splits no character.
  fc.record({ type: fc.constant('stream-refuse' as const), sid, reason: fc.string({ unit: 'binary-ascii', maxLength: MAX_REFUSE_REASON_BYTES }) }, plain),
  fc.record({ type: fc.constant('carrier' as const), sid, carrier: u32 }, plain),
  fc.record({ type: fc.constant('carrier-ack' as const), sid, carrier: u32, yours: u32 }, plain),
  fc.record({ type: fc.constant('tcp-lane' as const), sid, port, token: laneToken }, plain),
  fc.record({ type: fc.constant('tcp-lane-ack' as const), sid, port, listenPort: port, token: laneToken }, plain),
  fc.record({ type: fc.constant('relay-lane' as const), sid, lane: laneToken, token: laneToken }, plain),
  fc.record({ type: fc.constant('relay-lane-ack' as const), sid, lane: laneToken, token: laneToken }, plain),
  fc.record({ type: fc.constant('lane-claim' as const), sid, spare: sid }, plain),
);

test('every control message encodes and decodes to itself', () => {
  for (const m of examples) assert.deepEqual(decodeControl(encodeControl(m)), m);
  fc.assert(
    fc.property(anyControl, (m) => {
      assert.deepEqual(decodeControl(encodeControl(m)), m);
    }),
    { numRuns: 3000 },
  );
});

test('the layout: type code, version 1, sid big-endian, then the body', () => {
  assert.deepEqual(ControlType, { streamOpen: 1, streamAccept: 2, streamRefuse: 3, carrier: 4, carrierAck: 5, tcpLane: 6, tcpLaneAck: 7, relayLane: 8, relayLaneAck: 9, laneClaim: 10 });
  const b = encodeControl({ type: 'carrier-ack', sid: 0x0102030405060708n, carrier: 0x0a0b0c0d, yours: 0xfffffffe });
  assert.equal(b.toString('hex'), '05' + '01' + '0102030405060708' + '0a0b0c0d' + 'fffffffe');
  const lane = encodeControl({ type: 'tcp-lane-ack', sid: 1n, port: 0x1234, listenPort: 0x5678, token });
  assert.equal(lane.toString('hex'), '07' + '01' + '0000000000000001' + '1234' + '5678' + Buffer.from(token).toString('hex'));
});

test('every control message fits in one disco opaque payload', () => {
  for (const m of examples) assert.ok(encodeControl(m).length <= MAX_OPAQUE_BYTES, m.type);
  const longest = encodeControl({ type: 'stream-accept', sid: 1n, carrier: 1, handshake: new Uint8Array(MAX_HANDSHAKE_BYTES) });
  assert.ok(longest.length <= MAX_OPAQUE_BYTES);
  const refuse = encodeControl({ type: 'stream-refuse', sid: 1n, reason: 'x'.repeat(10 * MAX_REFUSE_REASON_BYTES) });
  assert.equal(refuse.length, 10 + MAX_REFUSE_REASON_BYTES, 'a long reason is cut');
  assert.deepEqual(decodeControl(refuse), { type: 'stream-refuse', sid: 1n, reason: 'x'.repeat(MAX_REFUSE_REASON_BYTES) });
});

test('what cannot be sent throws when encoded: a lane token of another size, a handshake too large', () => {
  assert.throws(() => encodeControl({ type: 'tcp-lane', sid: 5n, port: 1, token: new Uint8Array(15) }), /16 bytes/);
  assert.throws(() => encodeControl({ type: 'tcp-lane-ack', sid: 5n, port: 1, listenPort: 1, token: new Uint8Array(17) }), /16 bytes/);
  assert.throws(() => encodeControl({ type: 'relay-lane', sid: 5n, lane: new Uint8Array(15), token: new Uint8Array(16) }), /16 bytes/);
  assert.throws(
    () => encodeControl({ type: 'stream-open', sid: 1n, carrier: 1, handshake: new Uint8Array(MAX_HANDSHAKE_BYTES + 1) }),
    /handshake message too large/,
  );
});

test('malformed control messages decode to null, never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      const m = decodeControl(b);
      assert.ok(m === null || typeof m.type === 'string');
    }),
    { numRuns: 5000 },
  );
  // Each valid message with one byte more or less, or a byte changed where the codec checks it.
  fc.assert(
    fc.property(anyControl, fc.boolean(), (m, longer) => {
      const b = encodeControl(m);
      const other = longer ? Buffer.concat([b, Buffer.from([0])]) : b.subarray(0, b.length - 1);
      // Only a refuse's reason (up to its bound) and a handshake (from 1 byte) have a free length.
      const valid =
        m.type === 'stream-refuse'
          ? longer
            ? m.reason.length < MAX_REFUSE_REASON_BYTES
            : m.reason.length > 0
          : m.type === 'stream-open' || m.type === 'stream-accept'
            ? longer
              ? m.handshake.length < MAX_HANDSHAKE_BYTES
              : m.handshake.length > 1
            : false;
      const d = decodeControl(other);
      if (valid) assert.equal(d?.type, m.type);
      else assert.equal(d, null);
    }),
    { numRuns: 2000 },
  );
  const sidBytes = Buffer.alloc(8, 1);
  const msg = (type: number, ...body: number[][]): Buffer => Buffer.concat([Buffer.from([type, 1]), sidBytes, ...body.map((x) => Buffer.from(x))]);
  const tok = [...token];
  assert.equal(decodeControl(new Uint8Array(0)), null, 'empty');
  assert.equal(decodeControl(msg(4).subarray(0, 9)), null, 'short header');
  assert.equal(decodeControl(Buffer.concat([Buffer.from([4, 2]), sidBytes, Buffer.alloc(4)])), null, 'another version');
  assert.equal(decodeControl(msg(0, [0, 0, 0, 1])), null, 'type 0');
  assert.equal(decodeControl(msg(8, [0, 0, 0, 1])), null, 'unknown type');
  assert.equal(decodeControl(msg(1, [0, 0, 0, 1])), null, 'open without a handshake');
  assert.equal(decodeControl(msg(2, [0, 0])), null, 'accept without a carrier');
  assert.equal(decodeControl(msg(1, [0, 0, 0, 1], new Array<number>(MAX_HANDSHAKE_BYTES + 1).fill(1))), null, 'handshake too large');
  assert.equal(decodeControl(msg(3, new Array<number>(MAX_REFUSE_REASON_BYTES + 1).fill(0x61))), null, 'reason too long');
  assert.equal(decodeControl(msg(4, [0, 0, 1])), null, 'short carrier');
  assert.equal(decodeControl(msg(5, [0, 0, 0, 1, 0, 0, 0])), null, 'short carrier-ack');
  assert.equal(decodeControl(msg(6, [0, 0], tok)), null, 'lane offer from port 0');
  assert.equal(decodeControl(msg(6, [0, 1], tok.slice(1))), null, 'short token');
  assert.equal(decodeControl(msg(7, [0, 0], [0, 1], tok)), null, 'lane answer from port 0');
  assert.equal(decodeControl(msg(7, [0, 1], [0, 0], tok)), null, 'lane answer listening on port 0');
  assert.equal(decodeControl(msg(7, [0, 1], [0, 1], tok, [0])), null, 'long token');
  assert.deepEqual(decodeControl(msg(7, [0, 1], [0, 1], tok)), { type: 'tcp-lane-ack', sid: 0x0101010101010101n, port: 1, listenPort: 1, token });
});
