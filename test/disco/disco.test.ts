import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NodeKey } from '../../src/identity/node-key.js';
import {
  DiscoSealer,
  DiscoType,
  decodeDisco,
  encodeDisco,
  looksLikeDisco,
  MAX_DISCO_PACKET,
  MAX_OPAQUE_BYTES,
  ReplayWindow,
  REPLAY_WINDOW,
  type DiscoMessage,
} from '../../src/disco/index.js';
import { looksLikeStun } from '../../src/stun/message.js';

const txid = Buffer.from('000102030405060708090a0b', 'hex');

test('messages encode and decode: ping, pong (v4 and v6), call-me-maybe, birthday', () => {
  const msgs: DiscoMessage[] = [
    { type: 'ping', txid },
    { type: 'pong', txid, src: { address: '203.0.113.7', port: 41641 } },
    { type: 'pong', txid, src: { address: '2001:db8::7', port: 1 } },
    { type: 'call-me-maybe', endpoints: [{ address: '192.168.1.2', port: 5 }, { address: '2001:db8::1', port: 65535 }] },
    { type: 'call-me-maybe', endpoints: [] },
    { type: 'birthday', ip: '203.0.113.5' },
  ];
  for (const m of msgs) assert.deepEqual(decodeDisco(encodeDisco(m)), { ...m, ...('txid' in m ? { txid: new Uint8Array(m.txid) } : {}) });
});

test('an opaque payload is carried byte for byte, 1 to MAX_OPAQUE_BYTES long; disco never reads it', () => {
  for (const payload of [new Uint8Array([0]), new Uint8Array([4, 1, 2, 3]), new Uint8Array(MAX_OPAQUE_BYTES).fill(0xab)]) {
    const b = encodeDisco({ type: 'opaque', payload });
    assert.equal(b[0], DiscoType.opaque);
    assert.equal(b.length, 2 + payload.length);
    assert.deepEqual(decodeDisco(b), { type: 'opaque', payload });
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: MAX_OPAQUE_BYTES }), (payload) => {
      assert.deepEqual(decodeDisco(encodeDisco({ type: 'opaque', payload })), { type: 'opaque', payload });
    }),
    { numRuns: 500 },
  );
  assert.throws(() => encodeDisco({ type: 'opaque', payload: new Uint8Array(0) }), /1 to 768 bytes/);
  assert.throws(() => encodeDisco({ type: 'opaque', payload: new Uint8Array(MAX_OPAQUE_BYTES + 1) }), /1 to 768 bytes/);
  assert.equal(decodeDisco(Buffer.from([DiscoType.opaque, 1])), null, 'empty opaque');
  assert.equal(decodeDisco(Buffer.concat([Buffer.from([DiscoType.opaque, 1]), Buffer.alloc(MAX_OPAQUE_BYTES + 1)])), null, 'opaque too long');
  // Sealed, the longest opaque message still fits in a disco packet.
  const a = NodeKey.generate();
  const b = NodeKey.generate();
  const sealed = new DiscoSealer(a).seal(b.publicHex, { type: 'opaque', payload: new Uint8Array(MAX_OPAQUE_BYTES) });
  assert.ok(sealed.length <= MAX_DISCO_PACKET);
  assert.deepEqual(new DiscoSealer(b).open(sealed, () => true)?.message, { type: 'opaque', payload: new Uint8Array(MAX_OPAQUE_BYTES) });
});

test('type codes are named and fixed: ping 1, pong 2, call-me-maybe 3, birthday 9, opaque 12', () => {
  assert.deepEqual(DiscoType, { ping: 1, pong: 2, callMeMaybe: 3, birthday: 9, opaque: 12 });
  assert.equal(encodeDisco({ type: 'ping', txid })[0], 1);
  assert.equal(encodeDisco({ type: 'pong', txid, src: { address: '203.0.113.7', port: 1 } })[0], 2);
  assert.equal(encodeDisco({ type: 'call-me-maybe', endpoints: [] })[0], 3);
  assert.equal(encodeDisco({ type: 'birthday', ip: '203.0.113.7' })[0], 9);
  // The stream-control messages that used codes 4-8, 10 and 11 now ride inside opaque ones.
  for (const code of [4, 5, 6, 7, 8, 10, 11]) {
    assert.equal(decodeDisco(Buffer.concat([Buffer.from([code, 1]), Buffer.alloc(12)])), null, `retired type ${code}`);
  }
});

test('malformed plaintexts decode to null, never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const m = decodeDisco(b);
      assert.ok(m === null || typeof m.type === 'string');
    }),
    { numRuns: 5000 },
  );
  assert.equal(decodeDisco(Buffer.from([1, 1, 0])), null, 'short ping');
  assert.equal(decodeDisco(Buffer.from([9, 1])), null, 'short birthday');
  assert.equal(decodeDisco(Buffer.from([13, 1, 0, 0])), null, 'unknown type');
  assert.equal(decodeDisco(Buffer.from([1, 2, ...txid])), null, 'another version');
  assert.equal(decodeDisco(Buffer.from([3, 1, 33])), null, 'too many endpoints');
});

test('sealed between two keys: opens for the right peer; a stranger, a tampered byte or a replay are dropped', () => {
  const a = NodeKey.generate();
  const b = NodeKey.generate();
  const mallory = NodeKey.generate();
  const sa = new DiscoSealer(a);
  const sb = new DiscoSealer(b);
  const trustA = (k: string): boolean => k === a.publicHex;
  const pkt = sa.seal(b.publicHex, { type: 'ping', txid });
  assert.ok(looksLikeDisco(pkt));
  assert.ok(!looksLikeStun(pkt));
  assert.notEqual(pkt[0], 0xff);
  assert.ok(!pkt.includes(txid), 'the txid is not visible on the wire');
  const opened = sb.open(pkt, trustA);
  assert.deepEqual(opened, { sender: a.publicHex, message: { type: 'ping', txid: new Uint8Array(txid) } });
  assert.equal(sb.open(pkt, trustA), null, 'replayed');
  assert.equal(sb.open(sa.seal(b.publicHex, { type: 'ping', txid }), () => false), null, 'sender not vouched for');
  const forged = new DiscoSealer(mallory).seal(b.publicHex, { type: 'ping', txid });
  a.publicKey.copy(forged, 4); // claims to be A, sealed with Mallory's key
  assert.equal(sb.open(forged, trustA), null, 'forged sender');
  const tampered = sa.seal(b.publicHex, { type: 'ping', txid });
  tampered[tampered.length - 20]! ^= 1;
  assert.equal(sb.open(tampered, trustA), null, 'tampered');
  assert.equal(new DiscoSealer(mallory).open(sa.seal(b.publicHex, { type: 'ping', txid }), trustA), null, 'not for us');
  const back = sb.seal(a.publicHex, { type: 'pong', txid, src: { address: '203.0.113.9', port: 9 } });
  assert.equal(sa.open(back, (k) => k === b.publicHex)?.message.type, 'pong');
});

test('random bytes with the magic never open and never throw', () => {
  const me = new DiscoSealer(NodeKey.generate());
  const peer = NodeKey.generate();
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (tail) => {
      const pkt = Buffer.concat([Buffer.from('TVd1'), peer.publicKey, Buffer.from(tail)]);
      assert.equal(me.open(pkt, () => true), null);
    }),
    { numRuns: 500 },
  );
});

test('replay window: new counters pass once, out-of-order within the window passes, older is dropped', () => {
  const w = new ReplayWindow();
  assert.ok(w.accept(100n));
  assert.ok(!w.accept(100n));
  assert.ok(w.accept(98n));
  assert.ok(w.accept(101n));
  assert.ok(!w.accept(98n));
  assert.ok(w.accept(5000n));
  assert.ok(!w.accept(5000n - BigInt(REPLAY_WINDOW)), 'older than the window');
  assert.ok(w.accept(5000n - BigInt(REPLAY_WINDOW) + 1n));
  assert.ok(!w.accept(101n));
});

test('node keys persist: loadOrCreate writes mode 0600 and reloads the same key', async () => {
  const { mkdtempSync, statSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'traverse-key-'));
  try {
    const file = join(dir, 'sub', 'node.key');
    const k1 = NodeKey.loadOrCreate(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const k2 = NodeKey.loadOrCreate(file);
    assert.equal(k1.publicHex, k2.publicHex);
    const other = NodeKey.generate();
    assert.deepEqual(k1.sharedSecret(other.publicKey), other.sharedSecret(k1.publicKey));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
