// A stream destroyed with an error tells the peer at once (an RST frame), over real carriers: the
// RST must reach the wire before the carrier goes, or the peer waits for its idle timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import UDX, { type UDXStream } from 'udx-native';
import { ResumableSession } from '../../src/tunnel/session.js';
import { streamKeyPair } from '../helpers/stream-keys.js';

const K = streamKeyPair();

/** Well under the stream's idle timeout (15 s): a reset must arrive about as fast as a packet. */
const RESET_WITHIN_MS = 1000;

/** Resolves with the session's error, or rejects if none comes in time. */
function errorWithin(s: ResumableSession, ms: number): Promise<Error> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no error within ${ms} ms`)), ms);
    s.once('error', (err: Error) => {
      clearTimeout(t);
      resolve(err);
    });
  });
}

function closedWithin(c: Duplex, ms: number): Promise<void> {
  if (c.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the carrier was still open after ${ms} ms`)), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function udxPair(): Promise<{ a: UDXStream; b: UDXStream; close(): Promise<void> }> {
  const udx = new UDX();
  const sa = udx.createSocket();
  const sb = udx.createSocket();
  sa.bind(0, '127.0.0.1');
  sb.bind(0, '127.0.0.1');
  const a = udx.createStream(1);
  const b = udx.createStream(2);
  a.connect(sa, 2, sb.address().port, '127.0.0.1');
  b.connect(sb, 1, sa.address().port, '127.0.0.1');
  return {
    a,
    b,
    // A UDX socket closes only once its streams have: this also says no carrier was left behind.
    close: async () => {
      await Promise.all([sa.close(), sb.close()]);
    },
  };
}

async function tcpPair(): Promise<{ a: Socket; b: Socket; close(): void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const a = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, noDelay: true });
  await once(a, 'connect');
  const [b] = await accepted;
  server.close();
  return { a, b, close: () => (a.destroy(), b.destroy()) };
}

test('an errored destroy resets the peer at once over a UDX carrier, and the carriers then close', async () => {
  const p = await udxPair();
  try {
    const x = new ResumableSession({ keys: K.a });
    const y = new ResumableSession({ keys: K.b });
    x.attach(p.a);
    y.attach(p.b);
    x.on('error', () => undefined);
    // Both sides have spoken, as on an open stream.
    const got = once(y, 'data');
    x.write(Buffer.from('hello'));
    await got;
    const reset = errorWithin(y, RESET_WITHIN_MS);
    x.destroy(new Error('the local connection was reset'));
    assert.match((await reset).message, /peer reset the stream: the local connection was reset/);
    await Promise.all([closedWithin(p.a, 3000), closedWithin(p.b, 3000)]);
  } finally {
    p.a.destroy();
    p.b.destroy();
    await p.close();
  }
});

test('an errored destroy resets the peer over a TCP lane, after the bytes it has yet to read', async () => {
  const p = await tcpPair();
  try {
    const x = new ResumableSession({ keys: K.a, maxUnacked: 64 << 20 });
    const y = new ResumableSession({ keys: K.b, maxUnacked: 64 << 20 });
    x.attach(p.a);
    y.attach(p.b);
    x.on('error', () => undefined);
    // y's reader is behind: most of what x sends waits in x's socket, and the RST behind it.
    for (let i = 0; i < 64; i++) x.write(Buffer.alloc(128 << 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(p.a.writableLength > 0, 'bytes are queued in the socket');
    const reset = errorWithin(y, RESET_WITHIN_MS);
    x.destroy(new Error('the forward was closed'));
    y.resume();
    assert.match((await reset).message, /peer reset the stream: the forward was closed/);
    await Promise.all([closedWithin(p.a, 3000), closedWithin(p.b, 3000)]);
  } finally {
    p.close();
  }
});

test('the carrier that carries a reset is destroyed after a bounded wait if the peer never answers', async () => {
  let writes = 0;
  // Swallows everything and never ends: a peer that is gone.
  const sink = new Duplex({
    read() {},
    write(_c, _e, cb) {
      writes++;
      cb();
    },
  });
  const x = new ResumableSession({ keys: K.a, resetLingerMs: 100 });
  x.attach(sink);
  x.on('error', () => undefined);
  const before = writes;
  const started = Date.now();
  x.destroy(new Error('boom'));
  await closedWithin(sink, 1000);
  assert.ok(writes > before, 'the RST was written');
  assert.ok(Date.now() - started >= 90, 'the carrier was given time to flush the RST');

  // closeNow() does not wait for it.
  const sink2 = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  const z = new ResumableSession({ keys: K.a });
  z.attach(sink2);
  z.on('error', () => undefined);
  z.destroy(new Error('boom'));
  assert.equal(sink2.destroyed, false);
  z.closeNow();
  assert.equal(sink2.destroyed, true);
});

test('a clean destroy still ends the carriers without a reset', async () => {
  const sink = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  const x = new ResumableSession({ keys: K.a });
  x.attach(sink);
  const finished = once(sink, 'finish');
  x.destroy();
  await finished;
  assert.equal(sink.destroyed, false, 'ended, not destroyed');
  sink.destroy();
});
