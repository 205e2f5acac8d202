import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { closeWhenSilent, LaneError, LaneListener, openLane, reserveLanePort } from '../../src/tunnel/tcp-lane.js';

// On one host nothing drops the first SYN of a simultaneous open (the kernel answers it with a
// reset), so here the lane opens through the agent's listener; the NAT lab tests the crossing SYNs.
test('client and agent open a TCP lane, prove their tokens, and keep bytes sent right after the token', async () => {
  const [pa, pb] = [await reserveLanePort(), await reserveLanePort()];
  const [ta, tb] = [randomBytes(16), randomBytes(16)];
  const listener = await LaneListener.open();
  const a = openLane({ localPort: pa, remoteAddress: '127.0.0.1', remotePort: pb, remoteListenPort: listener.port, ownToken: ta, peerToken: tb, role: 'client', timeoutMs: 3000 });
  const b = openLane({ localPort: pb, remoteAddress: '127.0.0.1', remotePort: pa, listener, ownToken: tb, peerToken: ta, role: 'agent', timeoutMs: 3000 });
  const [sa, sb] = await Promise.all([a, b]);
  try {
    assert.equal(sa.remoteAddress, '127.0.0.1');
    assert.ok(sb.remotePort === pa || sa.remotePort === listener.port);
    assert.equal(listener.server.listening, false, 'the listener closes once the lane stands');
    const got = new Promise<string>((resolve) => sb.once('data', (d: Buffer) => resolve(d.toString())));
    sb.resume();
    sa.write('hello');
    assert.equal(await got, 'hello');
  } finally {
    sa.destroy();
    sb.destroy();
  }
});

test('a lane whose other end sends the wrong token is refused', async () => {
  // A stranger listening where the peer should be, sending 16 bytes that are not our token.
  const server = createServer((s) => s.end(Buffer.alloc(16, 1)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    await assert.rejects(
      openLane({ localPort: await reserveLanePort(), remoteAddress: '127.0.0.1', remotePort: port, ownToken: randomBytes(16), peerToken: randomBytes(16), role: 'client', timeoutMs: 500 }),
      (e: unknown) => e instanceof LaneError && /wrong token/.test(e.message),
    );
  } finally {
    server.close();
  }
});

test("the agent's listener says nothing to a stranger with the wrong token, and closes it", async () => {
  const listener = await LaneListener.open();
  const lane = openLane({ localPort: await reserveLanePort(), remoteAddress: '127.0.0.1', remotePort: await reserveLanePort(), listener, ownToken: randomBytes(16), peerToken: randomBytes(16), role: 'agent', timeoutMs: 1000 });
  lane.catch(() => undefined);
  const heard = await new Promise<Buffer>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: listener.port }, () => s.write(Buffer.alloc(16, 9)));
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(got)));
  });
  assert.equal(heard.length, 0);
  await assert.rejects(lane, /wrong token/);
});

test('a lane to a peer that never connects gives up after its timeout', async () => {
  const started = Date.now();
  await assert.rejects(
    openLane({ localPort: await reserveLanePort(), remoteAddress: '127.0.0.1', remotePort: await reserveLanePort(), ownToken: randomBytes(16), peerToken: randomBytes(16), role: 'client', timeoutMs: 400 }),
    (e: unknown) => e instanceof LaneError && /within 400 ms/.test(e.message),
  );
  assert.ok(Date.now() - started < 1500);
});

test('an aborted lane attempt stops at once', async () => {
  const ac = new AbortController();
  const p = openLane({ localPort: await reserveLanePort(), remoteAddress: '127.0.0.1', remotePort: await reserveLanePort(), ownToken: randomBytes(16), peerToken: randomBytes(16), role: 'client', timeoutMs: 5000 }, ac.signal);
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, /cancelled/);
});

/** A connected pair of sockets on loopback. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  const b = await accepted;
  server.close();
  return [a, b];
}

test('a lane on which nothing arrives is closed after its silence; one that keeps hearing is not', async () => {
  const [quiet, peer] = await socketPair();
  const [busy, talker] = await socketPair();
  try {
    let silent = 0;
    closeWhenSilent(quiet, 300, () => silent++);
    closeWhenSilent(busy, 300, () => silent++);
    busy.resume();
    quiet.resume();
    // The quiet side keeps writing (into a peer that never answers): that is not hearing.
    const writing = setInterval(() => {
      quiet.write('x');
      talker.write('y');
    }, 100);
    const closed = new Promise<void>((r) => quiet.once('close', () => r()));
    await closed;
    clearInterval(writing);
    assert.equal(silent, 1);
    assert.equal(busy.destroyed, false, 'the lane that hears its peer stays');
  } finally {
    for (const s of [quiet, peer, busy, talker]) s.destroy();
  }
});

test('a lane paused by a slow reader is not taken for silent', async () => {
  const [slow, peer] = await socketPair();
  try {
    closeWhenSilent(slow, 300, () => undefined);
    slow.pause();
    peer.write('unread');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(slow.destroyed, false);
  } finally {
    slow.destroy();
    peer.destroy();
  }
});
