// Two (or three) MagicSock engines on 127.0.0.1 with an in-memory relay between them: the whole
// disco exchange over real UDP sockets, without a coordinator. Candidates are 127.0.0.1 only, so
// nothing leaves the machine. Written against MagicSock's public methods and its 'path' event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { MagicSock } from '../../src/magicsock/magicsock.js';
import { MemoryRelay, openLoopbackMagicSock } from '../helpers/memory-relay.js';
import type { Path } from '../../src/net/path.js';
import { NodeKey } from '../../src/identity/node-key.js';
import { DiscoSealer } from '../../src/disco/index.js';

interface Peer {
  readonly key: NodeKey;
  readonly ms: MagicSock;
}

function openPeer(relay: MemoryRelay, opts: { directAllowed?: boolean } = {}): Promise<Peer> {
  return openLoopbackMagicSock(relay, opts.directAllowed);
}

function waitForPath(ms: MagicSock, peerKey: string, kind: Path['kind'], timeoutMs = 3000): Promise<Path> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ms.off('path', onPath);
      reject(new Error(`no ${kind} path within ${timeoutMs} ms (now ${JSON.stringify(ms.pathOf(peerKey))})`));
    }, timeoutMs);
    const onPath = (k: string, p: Path): void => {
      if (k !== peerKey || p.kind !== kind) return;
      clearTimeout(timer);
      ms.off('path', onPath);
      resolve(p);
    };
    ms.on('path', onPath);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A bare UDP socket on 127.0.0.1 that collects what it receives. */
async function rawSocket(): Promise<{ sock: Socket; port: number; received: Buffer[] }> {
  const sock = createSocket('udp4');
  const received: Buffer[] = [];
  sock.on('message', (m) => received.push(m));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return { sock, port: sock.address().port, received };
}

test('relay first, then an upgrade to direct; user pings report the path they took', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay);
  const b = await openPeer(relay);
  try {
    // The coordinator has vouched for both, but neither has published an endpoint yet.
    a.ms.upsertPeer(b.key.publicHex, []);
    b.ms.upsertPeer(a.key.publicHex, []);
    assert.deepEqual(a.ms.pathOf(b.key.publicHex), { kind: 'relay' });
    const relayed = await a.ms.ping(b.key.publicHex, 1000);
    assert.deepEqual(relayed?.path, { kind: 'relay' }, 'a pong through the relay');
    assert.ok(relay.log.some((l) => l.from === b.key.publicHex && l.to === a.key.publicHex), 'the pong came back through the relay');

    // Now both learn their endpoints and publish them (what PeerNode does on 'endpoints').
    const [epA, epB] = [await a.ms.refreshEndpoints(), await b.ms.refreshEndpoints()];
    assert.deepEqual(epA, [`127.0.0.1:${a.ms.port}`]);
    const directA = waitForPath(a.ms, b.key.publicHex, 'direct');
    const directB = waitForPath(b.ms, a.key.publicHex, 'direct');
    const t0 = performance.now();
    a.ms.upsertPeer(b.key.publicHex, epB);
    b.ms.upsertPeer(a.key.publicHex, epA);
    assert.deepEqual(await directA, { kind: 'direct', endpoint: `127.0.0.1:${b.ms.port}` });
    assert.deepEqual(await directB, { kind: 'direct', endpoint: `127.0.0.1:${a.ms.port}` });
    assert.ok(performance.now() - t0 < 500, 'the first burst round finds a loopback path within a few ticks');

    const direct = await a.ms.ping(b.key.publicHex, 1000);
    assert.deepEqual(direct?.path, { kind: 'direct', endpoint: `127.0.0.1:${b.ms.port}` });
    assert.ok(direct.latencyMs < 100);
    const back = await b.ms.ping(a.key.publicHex, 1000);
    assert.deepEqual(back?.path, { kind: 'direct', endpoint: `127.0.0.1:${a.ms.port}` });
  } finally {
    a.ms.close();
    b.ms.close();
  }
});

test('call-me-maybe through the relay is enough: one side knowing nothing still goes direct', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay);
  const b = await openPeer(relay);
  try {
    await a.ms.refreshEndpoints();
    await b.ms.refreshEndpoints();
    const directA = waitForPath(a.ms, b.key.publicHex, 'direct');
    const directB = waitForPath(b.ms, a.key.publicHex, 'direct');
    // B was told nothing about A's endpoints, only the IP the coordinator saw A at; A neither:
    // only A's call-me-maybe carries them, usable because they are on that vouched IP.
    b.ms.upsertPeer(a.key.publicHex, [], { vouchedIp: '127.0.0.1' });
    a.ms.upsertPeer(b.key.publicHex, [], { vouchedIp: '127.0.0.1' });
    await directA;
    const aAt = performance.now();
    await directB;
    // B announces its direct path on its own engine tick (25 ms): at most a few ticks after A.
    assert.ok(performance.now() - aAt < 200, `B went direct ${Math.round(performance.now() - aAt)} ms after A`);
    assert.equal(b.ms.pathOf(a.key.publicHex).kind, 'direct');
  } finally {
    a.ms.close();
    b.ms.close();
  }
});

test('a third key the coordinator never vouched for gets no pong, directly or through the relay', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay);
  const c = await openPeer(relay);
  try {
    const epA = await a.ms.refreshEndpoints();
    await c.ms.refreshEndpoints();
    c.ms.upsertPeer(a.key.publicHex, epA); // C knows A; A was never told about C
    assert.equal(await c.ms.ping(a.key.publicHex, 400), null, 'no pong through the relay');
    await sleep(500); // the burst's rounds at 0..400 ms went straight to A's socket
    assert.deepEqual(c.ms.pathOf(a.key.publicHex), { kind: 'relay' }, 'none of the direct pings was answered');
    assert.ok(!relay.log.some((l) => l.from === a.key.publicHex), 'A sent nothing to C, not even through the relay');

    // At the packet level: a ping sealed with an unvouched key, straight at A's socket.
    const stranger = new DiscoSealer(NodeKey.generate());
    const raw = await rawSocket();
    try {
      raw.sock.send(stranger.seal(a.key.publicHex, { type: 'ping', txid: new Uint8Array(12).fill(7) }), a.ms.port, '127.0.0.1');
      await sleep(200);
      assert.equal(raw.received.length, 0);
    } finally {
      raw.sock.close();
    }
  } finally {
    a.ms.close();
    c.ms.close();
  }
});

test('a vouched peer is answered once per sealed packet: the same bytes sent again are dropped', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay);
  const peerKey = NodeKey.generate();
  const sealer = new DiscoSealer(peerKey);
  const raw = await rawSocket();
  try {
    a.ms.upsertPeer(peerKey.publicHex, []);
    const txid = new Uint8Array(12).fill(9);
    const packet = sealer.seal(a.key.publicHex, { type: 'ping', txid });
    const pongs = (): number =>
      raw.received.map((b) => sealer.open(b, (k) => k === a.key.publicHex)).filter((o) => o?.message.type === 'pong').length;
    raw.sock.send(packet, a.ms.port, '127.0.0.1');
    await sleep(150);
    assert.equal(pongs(), 1, 'the first copy is answered (and A pings back)');
    raw.received.length = 0;
    raw.sock.send(packet, a.ms.port, '127.0.0.1');
    raw.sock.send(packet, a.ms.port, '127.0.0.1');
    await sleep(150);
    assert.equal(pongs(), 0, 'replays are not answered');
    // A fresh packet with the same txid is a new message, and is answered.
    raw.sock.send(sealer.seal(a.key.publicHex, { type: 'ping', txid }), a.ms.port, '127.0.0.1');
    await sleep(150);
    assert.equal(pongs(), 1);
  } finally {
    raw.sock.close();
    a.ms.close();
  }
});

test('directAllowed=false stays on the relay, even when the other side knows its port and pings it', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay, { directAllowed: false });
  const b = await openPeer(relay);
  try {
    assert.deepEqual(await a.ms.refreshEndpoints(), [], 'a relay-only node publishes no endpoint');
    await b.ms.refreshEndpoints();
    const paths: Path[] = [];
    a.ms.on('path', (_k, p) => paths.push(p));
    b.ms.on('path', (_k, p) => paths.push(p));
    a.ms.upsertPeer(b.key.publicHex, b.ms.endpoints);
    b.ms.upsertPeer(a.key.publicHex, [`127.0.0.1:${a.ms.port}`]); // a stale or guessed endpoint
    await sleep(900); // the burst's rounds at 0..800 ms
    assert.deepEqual(paths, [], 'no path change on either side');
    assert.deepEqual(a.ms.pathOf(b.key.publicHex), { kind: 'relay' });
    assert.deepEqual(b.ms.pathOf(a.key.publicHex), { kind: 'relay' });
    assert.deepEqual((await a.ms.ping(b.key.publicHex, 1000))?.path, { kind: 'relay' });
    assert.deepEqual((await b.ms.ping(a.key.publicHex, 1000))?.path, { kind: 'relay' });
  } finally {
    a.ms.close();
    b.ms.close();
  }
});

test('removePeer: a peer the coordinator dropped is no longer answered', async () => {
  const relay = new MemoryRelay();
  const a = await openPeer(relay);
  const b = await openPeer(relay);
  try {
    const [epA, epB] = [await a.ms.refreshEndpoints(), await b.ms.refreshEndpoints()];
    const direct = waitForPath(b.ms, a.key.publicHex, 'direct');
    a.ms.upsertPeer(b.key.publicHex, epB);
    b.ms.upsertPeer(a.key.publicHex, epA);
    await direct;
    a.ms.removePeer(b.key.publicHex);
    assert.equal(a.ms.hasPeer(b.key.publicHex), false);
    assert.equal(await b.ms.ping(a.key.publicHex, 400), null);
  } finally {
    a.ms.close();
    b.ms.close();
  }
});
