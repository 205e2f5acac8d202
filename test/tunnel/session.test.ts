// The resumable session over in-memory carriers that can die mid-flight, losing what they carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { ResumableSession } from '../../src/tunnel/session.js';
import { FrameDecoder, encodeDataHeader, encodeOffsetFrame, encodeRst, FrameType } from '../../src/tunnel/frames.js';

/** Two carrier ends; `cut()` makes both silently drop everything from then on, like a dead path. */
function carrierPair(): { a: Duplex; b: Duplex; cut(): void } {
  let dead = false;
  // eslint-disable-next-line prefer-const
  let b: Duplex;
  const mk = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) {
        // Deliver asynchronously, like a network, so a cut can lose data in flight.
        setImmediate(() => {
          if (!dead) other().push(chunk);
        });
        cb();
      },
      final(cb) {
        setImmediate(() => {
          if (!dead) other().push(null);
        });
        cb();
      },
    });
  const a = mk(() => b);
  b = mk(() => a);
  return { a, b, cut: () => (dead = true) };
}

function collect(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('bytes arrive intact and in order across two carrier switches, one of them on a dead path', async () => {
  const x = new ResumableSession({ maxUnacked: 256 << 10 });
  const y = new ResumableSession({ maxUnacked: 256 << 10 });
  let pair = carrierPair();
  x.attach(pair.a);
  y.attach(pair.b);
  const payload = randomBytes(8 << 20);
  const received = collect(y);
  let sent = 0;
  const chunk = 64 << 10;
  let switches = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < payload.length) {
        const piece = payload.subarray(sent, sent + chunk);
        sent += piece.length;
        if (sent > payload.length / 3 && switches === 0) {
          switches++;
          pair.cut(); // the path dies with data in flight
          pair = carrierPair();
          x.attach(pair.a);
          y.attach(pair.b);
        } else if (sent > (2 * payload.length) / 3 && switches === 1) {
          switches++;
          const old = pair; // an orderly upgrade: the old carrier still delivers its tail
          pair = carrierPair();
          x.attach(pair.a);
          y.attach(pair.b);
          setTimeout(() => old.cut(), 5);
        }
        if (!x.write(piece)) {
          x.once('drain', pump);
          return;
        }
      }
      x.end();
      resolve();
    };
    pump();
  });
  const got = await received;
  assert.equal(got.length, payload.length);
  assert.equal(sha(got), sha(payload));
  assert.equal(switches, 2);
});

test('half-close: each direction ends on its own, and writing continues the other way', async () => {
  const x = new ResumableSession();
  const y = new ResumableSession();
  const p = carrierPair();
  x.attach(p.a);
  y.attach(p.b);
  const yGot = collect(y);
  x.end(Buffer.from('request'));
  assert.equal((await yGot).toString(), 'request');
  const xGot = collect(x);
  y.write(Buffer.from('response after the peer closed its side'));
  y.end();
  assert.equal((await xGot).toString(), 'response after the peer closed its side');
});

test('the unacked buffer is bounded: writes wait while the peer does not acknowledge', async () => {
  const x = new ResumableSession({ maxUnacked: 100_000 });
  const sink = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } }); // swallows: no acks ever
  x.attach(sink);
  let accepted = 0;
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const ok = x.write(Buffer.alloc(10_000), () => {
        accepted++;
        resolve();
      });
      void ok;
      setTimeout(resolve, 20);
    });
  }
  assert.ok(accepted <= 11, `accepted ${accepted} writes of 10 kB with a 100 kB bound`);
  assert.ok(x.bufferedUnacked <= 110_000);
  x.destroy();
});

test('a reset reaches the peer as an error; a malformed frame or a gap is a protocol error', async () => {
  const x = new ResumableSession();
  const y = new ResumableSession();
  const p = carrierPair();
  x.attach(p.a);
  y.attach(p.b);
  const err = new Promise<Error>((resolve) => y.on('error', resolve));
  x.on('error', () => undefined);
  x.destroy(new Error('target refused the connection'));
  assert.match((await err).message, /peer reset the stream: target refused the connection/);

  for (const bad of [Buffer.from([9, 0, 0]), Buffer.concat([encodeDataHeader(50, 3), Buffer.from('abc')])]) {
    const z = new ResumableSession();
    const feed = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    z.attach(feed);
    const e = new Promise<Error>((resolve) => z.on('error', resolve));
    feed.push(bad);
    assert.match((await e).message, /protocol error/);
  }
});

test('frame decoder: DATA payloads are handed on piecewise with absolute offsets', () => {
  const seen: string[] = [];
  const d = new FrameDecoder({
    hello: (o) => seen.push(`hello ${o}`),
    data: (o, b) => seen.push(`data ${o} ${b.toString()}`),
    ack: (o) => seen.push(`ack ${o}`),
    fin: (o) => seen.push(`fin ${o}`),
    rst: (r) => seen.push(`rst ${r}`),
  });
  const stream = Buffer.concat([
    encodeOffsetFrame(FrameType.Hello, 7),
    encodeDataHeader(100, 6),
    Buffer.from('abcdef'),
    encodeOffsetFrame(FrameType.Ack, 9),
    encodeOffsetFrame(FrameType.Fin, 106),
    encodeRst('bye'),
  ]);
  for (let i = 0; i < stream.length; i += 4) d.push(stream.subarray(i, i + 4));
  assert.deepEqual(seen, ['hello 7', 'data 100 ab', 'data 102 cdef', 'ack 9', 'fin 106', 'rst bye']);
});
