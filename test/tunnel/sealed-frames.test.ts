// The sealed frames of a stream (record-cipher.ts, frames.ts, session.ts): whatever is altered,
// replayed, reordered or sealed with another key ends the stream with an error and never passes a
// byte; resends across carriers are dropped; keepalives keep an idle stream alive and silence
// ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { ResumableSession } from '../../src/tunnel/session.js';
import { dataHead, FrameDecoder, FrameType } from '../../src/tunnel/frames.js';
import { RecordCipher, RecordError } from '../../src/tunnel/record-cipher.js';
import { carrierPair, streamKeyPair } from '../helpers/stream-keys.js';
import { readAll } from '../helpers/read-all.js';

/** A carrier that keeps what the session writes, and lets the test push bytes to it. */
function tap(): { carrier: Duplex; written: Buffer[] } {
  const written: Buffer[] = [];
  const carrier = new Duplex({
    read() {},
    write(chunk: Buffer, _e, cb) {
      written.push(Buffer.from(chunk));
      cb();
    },
  });
  return { carrier, written };
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What session x wrote on a carrier for `parts`, one write each: HELLO, then its DATA frames. */
async function sealedBy(x: ResumableSession, parts: Buffer[]): Promise<Buffer> {
  const t = tap();
  x.attach(t.carrier);
  for (const p of parts) x.write(p);
  await tick();
  return Buffer.concat(t.written);
}

/** The frames in a byte stream, as [start, end) ranges. */
function frameRanges(bytes: Buffer): { type: number; start: number; end: number }[] {
  const out: { type: number; start: number; end: number }[] = [];
  let at = 0;
  const d = new FrameDecoder((head, body) => {
    const len = head.length + body.reduce((n, b) => n + b.length, 0);
    out.push({ type: head[0]!, start: at, end: at + len });
    at += len;
  });
  d.push(bytes);
  return out;
}

/** Feeds bytes to a fresh receiving session on a new carrier; what it delivered and how it ended. */
async function receive(keys: ReturnType<typeof streamKeyPair>['b'], chunks: Buffer[]): Promise<{ data: Buffer; error: Error | null }> {
  const y = new ResumableSession({ keys, idleTimeoutMs: 0 });
  const t = tap();
  y.attach(t.carrier);
  const got: Buffer[] = [];
  let error: Error | null = null;
  y.on('data', (d: Buffer) => got.push(d));
  y.on('error', (e: Error) => (error = e));
  for (const c of chunks) t.carrier.push(c);
  await tick();
  y.destroy();
  return { data: Buffer.concat(got), error };
}

test('a stream sealed by one end opens at the other; the carrier sees no plaintext', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const secret = Buffer.from('the quick brown fox '.repeat(100));
  const wire = await sealedBy(x, [secret]);
  x.destroy();
  assert.equal(wire.indexOf(Buffer.from('quick brown')), -1, 'no plaintext on the carrier');
  const r = await receive(K.b, [wire]);
  assert.equal(r.error, null);
  assert.deepEqual(r.data, secret);
});

test('a tampered DATA frame (header, tag or body) ends the stream and passes no byte', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const wire = await sealedBy(x, [randomBytes(3000)]);
  x.destroy();
  const data = frameRanges(wire).find((f) => f.type === FrameType.Data)!;
  // The offset in the header, the tag, and the first, middle and last byte of the body.
  for (const at of [data.start + 3, data.start + 20, data.start + 29, data.start + 1500, data.end - 1]) {
    const bad = Buffer.from(wire);
    bad[at]! ^= 0x01;
    const r = await receive(K.b, [bad]);
    assert.equal(r.data.length, 0, `byte ${at - data.start} of the frame altered: nothing delivered`);
    assert.match(String(r.error?.message), /security error|protocol error/, `byte ${at - data.start} altered`);
  }
});

test('property: any single altered bit in a sealed stream never delivers altered bytes', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const parts = [randomBytes(700), randomBytes(5000), randomBytes(70_000)];
  const original = Buffer.concat(parts);
  const wire = await sealedBy(x, parts);
  x.destroy();
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: wire.length * 8 - 1 }), fc.integer({ min: 1, max: 9000 }), async (bit, step) => {
      const bad = Buffer.from(wire);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bad.length; i += step) chunks.push(bad.subarray(i, i + step));
      const r = await receive(K.b, chunks);
      // What was delivered is a prefix of the original: whole frames before the altered one.
      assert.ok(r.data.length < original.length, 'the altered frame was not delivered');
      assert.deepEqual(r.data, original.subarray(0, r.data.length));
    }),
    { numRuns: 60 },
  );
});

test('a frame replayed or reordered on one carrier ends the stream', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const wire = await sealedBy(x, [Buffer.from('first'), Buffer.from('second')]);
  x.destroy();
  const [hello, one, two] = frameRanges(wire).map((f) => wire.subarray(f.start, f.end));
  const replayed = await receive(K.b, [hello!, one!, one!]);
  assert.match(String(replayed.error?.message), /replayed or reordered/);
  assert.equal(replayed.data.toString(), 'first', 'the replay delivered nothing more');
  const reordered = await receive(K.b, [hello!, two!, one!]);
  assert.match(String(reordered.error?.message), /protocol error: data at 5 but 0 received/);
  assert.equal(reordered.data.length, 0);
});

test('a resend of a delivered frame on a new carrier (a carrier move) is dropped, not delivered twice', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const wire = await sealedBy(x, [Buffer.from('once')]);
  x.destroy();
  const y = new ResumableSession({ keys: K.b, idleTimeoutMs: 0 });
  const got: Buffer[] = [];
  y.on('data', (d: Buffer) => got.push(d));
  let error: Error | null = null;
  y.on('error', (e: Error) => (error = e));
  for (let i = 0; i < 2; i++) {
    const t = tap();
    y.attach(t.carrier);
    t.carrier.push(wire);
    await tick();
  }
  assert.equal(error, null);
  assert.equal(Buffer.concat(got).toString(), 'once');
  y.destroy();
});

test('frames sealed with another key, or our own frames reflected back, do not open', async () => {
  const K = streamKeyPair();
  const x = new ResumableSession({ keys: K.a });
  const wire = await sealedBy(x, [Buffer.from('hello')]);
  x.destroy();
  const stranger = await receive(streamKeyPair().b, [wire]);
  assert.match(String(stranger.error?.message), /security error: a frame of type 1 failed authentication/);
  assert.equal(stranger.data.length, 0);
  const reflected = await receive(K.a, [wire]); // the sender's own keys: rx is not the tx it sealed with
  assert.match(String(reflected.error?.message), /security error/);
  assert.equal(reflected.data.length, 0);
});

test('the cipher: a frame opens once with the right header, value and key; RecordError otherwise', () => {
  const K = streamKeyPair();
  const a = new RecordCipher(K.a);
  const b = new RecordCipher(K.b);
  const head = dataHead(4096, 5);
  const body = a.seal(head, [Buffer.from('he'), Buffer.from('llo')]);
  assert.equal(Buffer.concat(b.open(head, body)).toString(), 'hello');
  const moved = dataHead(4097, 5); // the same tag under another offset: another nonce and header
  head.copy(moved, 13, 13);
  assert.throws(() => b.open(moved, body), RecordError, 'another nonce');
  assert.throws(() => a.open(head, body), RecordError, 'our own key');
  assert.throws(() => new RecordCipher({ tx: Buffer.alloc(16), rx: Buffer.alloc(32) }), RangeError);
});

test('an unknown frame type (a peer of another version) is a protocol error naming it', async () => {
  const K = streamKeyPair();
  const r = await receive(K.b, [Buffer.from([0x42, 0, 0, 0])]);
  assert.match(String(r.error?.message), /protocol error: unknown frame type 66 \(a peer running another version of traverse\?\)/);
});

/** Two sessions on one carrier pair with fast keepalives (40 ms) and idle timeouts (200 ms), and the errors either ends with. */
function keptAlivePair(): { x: ResumableSession; y: ResumableSession; p: ReturnType<typeof carrierPair>; errors: Error[] } {
  const K = streamKeyPair();
  const opts = { keepAliveMs: 40, idleTimeoutMs: 200 };
  const x = new ResumableSession({ keys: K.a, ...opts });
  const y = new ResumableSession({ keys: K.b, ...opts });
  const p = carrierPair();
  x.attach(p.a);
  y.attach(p.b);
  const errors: Error[] = [];
  x.on('error', (e: Error) => errors.push(e));
  y.on('error', (e: Error) => errors.push(e));
  return { x, y, p, errors };
}

test('a reader that stops reading for longer than the idle timeout does not end the stream; its bytes arrive when it reads again', async () => {
  const { x, y, errors } = keptAlivePair();
  const data = randomBytes(2 << 20); // more than y buffers: y's carrier is paused
  x.end(data);
  await tick(700); // y reads nothing for three idle timeouts (ssh suspended with Ctrl-Z, say)
  assert.deepEqual(errors.map((e) => e.message), [], 'a paused reader is not a silent peer');
  const got = await readAll(y);
  assert.ok(got.equals(data), 'every byte, once read');
});

test('keepalives keep an idle stream open; a silent peer ends it after the idle timeout', async () => {
  const { p, errors } = keptAlivePair();
  await tick(600); // three idle timeouts with nothing written
  assert.equal(errors.length, 0, 'pings kept both ends alive');
  p.cut();
  const started = Date.now();
  while (errors.length < 2 && Date.now() - started < 2000) await tick(10);
  assert.equal(errors.length, 2);
  for (const e of errors) assert.match(e.message, /the peer was silent for/);
  assert.ok(Date.now() - started >= 150, 'not before the idle timeout');
});
