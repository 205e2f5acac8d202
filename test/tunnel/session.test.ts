// The resumable session over in-memory carriers that can die mid-flight, losing what they carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { ResumableSession } from '../../src/tunnel/session.js';
import { dataHead, FrameDecoder, frameHead, frameValue, FrameType } from '../../src/tunnel/frames.js';
import { RecordCipher } from '../../src/tunnel/record-cipher.js';
import { carrierPair, streamKeyPair } from '../helpers/stream-keys.js';
import { readAll } from '../helpers/read-all.js';

const K = streamKeyPair();

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('bytes arrive intact and in order across two carrier switches, one of them on a dead path', async () => {
  const x = new ResumableSession({ keys: K.a, maxUnacked: 256 << 10 });
  const y = new ResumableSession({ keys: K.b, maxUnacked: 256 << 10 });
  let pair = carrierPair();
  x.attach(pair.a);
  y.attach(pair.b);
  const payload = randomBytes(8 << 20);
  const received = readAll(y);
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
  const x = new ResumableSession({ keys: K.a });
  const y = new ResumableSession({ keys: K.b });
  const p = carrierPair();
  x.attach(p.a);
  y.attach(p.b);
  const yGot = readAll(y);
  x.end(Buffer.from('request'));
  assert.equal((await yGot).toString(), 'request');
  const xGot = readAll(x);
  y.write(Buffer.from('response after the peer closed its side'));
  y.end();
  assert.equal((await xGot).toString(), 'response after the peer closed its side');
});

test('the unacked buffer is bounded: writes wait while the peer does not acknowledge', async () => {
  const x = new ResumableSession({ keys: K.a, maxUnacked: 100_000 });
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
  const x = new ResumableSession({ keys: K.a });
  const y = new ResumableSession({ keys: K.b });
  const p = carrierPair();
  x.attach(p.a);
  y.attach(p.b);
  const err = new Promise<Error>((resolve) => y.on('error', resolve));
  x.on('error', () => undefined);
  x.destroy(new Error('target refused the connection'));
  assert.match((await err).message, /peer reset the stream: target refused the connection/);

  // z reads what K.b seals: a frame from its peer, but with a gap before it.
  const peer = new RecordCipher(K.b);
  for (const bad of [Buffer.from([9, 0, 0]), sealedData(peer, 50, Buffer.from('abc'))]) {
    const z = new ResumableSession({ keys: K.a });
    const feed = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    z.attach(feed);
    const e = new Promise<Error>((resolve) => z.on('error', resolve));
    feed.push(bad);
    assert.match((await e).message, /protocol error/);
  }
});

/** A sealed DATA frame, as one buffer. */
function sealedData(cipher: RecordCipher, offset: number, bytes: Buffer): Buffer {
  const head = dataHead(offset, bytes.length);
  return Buffer.concat([head, ...cipher.seal(head, [bytes])]);
}

function sealedControl(cipher: RecordCipher, type: 1 | 3 | 4 | 6, value: number): Buffer {
  const head = frameHead(type, value);
  cipher.seal(head, []);
  return head;
}

test('frame decoder: whole frames, their bodies in the pieces they arrived in, from any split of the bytes', () => {
  const c = new RecordCipher(K.a);
  const stream = Buffer.concat([
    sealedControl(c, FrameType.Hello, 7),
    sealedData(c, 100, Buffer.from('abcdef')),
    sealedControl(c, FrameType.Ack, 9),
    sealedControl(c, FrameType.Fin, 106),
    sealedControl(c, FrameType.Ping, 3),
  ]);
  const open = new RecordCipher(K.b);
  for (const step of [1, 4, 13, 1000]) {
    const seen: string[] = [];
    const d = new FrameDecoder((head, body) => {
      const plain = Buffer.concat(open.open(head, body)).toString();
      seen.push(`${head[0]} ${frameValue(head)}${plain ? ` ${plain}` : ''}`);
    });
    for (let i = 0; i < stream.length; i += step) d.push(stream.subarray(i, i + step));
    assert.deepEqual(seen, ['1 7', '2 100 abcdef', '3 9', '4 106', '6 3'], `pieces of ${step}`);
  }
});
