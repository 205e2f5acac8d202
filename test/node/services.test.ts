// The node's services as library functions, between two PeerNodes on loopback (a test
// coordination server on 127.0.0.1; both nodes offer only loopback candidates and run no STUN):
// forward, proxy, ping, speedtest, and a one-off netcheck against a local STUN server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { ForwardListenError, startForwards } from '../../src/node/forward.js';
import { pingPeer, type PingReply } from '../../src/node/ping.js';
import { ProxyError, proxyStream } from '../../src/node/proxy.js';
import { SpeedtestRefused, measure, speedtest, waitForDirect } from '../../src/node/speedtest.js';
import { runLocalNetcheck } from '../../src/node/netcheck.js';
import { startStunServer } from '../../src/stun/server.js';
import { eventually, startTestServer } from '../server/helpers.js';
import { loopbackNode, loopbackPair } from './loopback-node.js';

/** A TCP target on 127.0.0.1 that sends back everything it receives, and ends when its peer does. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

/** Writes `data`, half-closes, and collects everything until the other side ends. */
async function roundTrip(port: number, data: Buffer): Promise<{ got: Buffer; sock: Socket }> {
  const sock = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(sock, 'connect');
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const ended = once(sock, 'end');
  sock.end(data);
  await ended;
  return { got: Buffer.concat(chunks), sock };
}

test('forward: a local port carries bytes both ways to a target behind the agent, keeps half-close, and closes cleanly', async () => {
  const pair = await loopbackPair();
  const target = await echoServer();
  try {
    const fwd = await startForwards(pair.client, { agent: 'ws1', forwards: [{ localPort: 0, target: `127.0.0.1:${target.port}` }], bind: '127.0.0.1' });
    assert.equal(fwd.bound.length, 1);
    const bound = fwd.bound[0]!;
    assert.equal(bound.bind, '127.0.0.1');
    assert.ok(bound.port > 0);
    assert.equal(bound.forward.target, `127.0.0.1:${target.port}`);
    assert.ok(bound.path.kind === 'direct' || bound.path.kind === 'relay');
    const connections: string[] = [];
    const failures: Error[] = [];
    fwd.on('connection', (f) => connections.push(f.target));
    fwd.on('connectionFailed', (_f, err) => failures.push(err));

    // 256 KiB out; the same bytes back only after our FIN reached the target (half-close).
    const data = randomBytes(256 << 10);
    const { got, sock } = await roundTrip(bound.port, data);
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data), 'the bytes that came back are the bytes sent');
    assert.deepEqual(connections, [`127.0.0.1:${target.port}`]);
    assert.deepEqual(failures, []);
    await once(sock, 'close');

    // A second connection at the same time as a third: independent streams.
    const [r2, r3] = await Promise.all([roundTrip(bound.port, Buffer.from('two')), roundTrip(bound.port, Buffer.from('three'))]);
    assert.equal(r2.got.toString(), 'two');
    assert.equal(r3.got.toString(), 'three');

    // Closing the forwarder ends carried connections and stops listening; the node stays up.
    const carried = once(fwd, 'connection');
    const held = connect({ host: '127.0.0.1', port: bound.port });
    await once(held, 'connect');
    await carried;
    assert.equal(fwd.activeConnections, 1);
    const heldClosed = once(held, 'close');
    held.on('error', () => undefined);
    await fwd.close();
    await heldClosed;
    assert.equal(fwd.activeConnections, 0);
    const refused = connect({ host: '127.0.0.1', port: bound.port });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    assert.ok(pair.client.peerByName('ws1'), 'the node is still connected to the agent');
  } finally {
    for (const s of target.sockets) s.destroy(); // see the todo test below
    await closeServer(target.server);
    await pair.close();
  }
});

test("forward: closing the forwarder resets the agent's end of a carried connection at once", async () => {
  const pair = await loopbackPair();
  const target = await echoServer();
  try {
    const fwd = await startForwards(pair.client, { agent: 'ws1', forwards: [{ localPort: 0, target: `127.0.0.1:${target.port}` }], bind: '127.0.0.1' });
    const carried = once(fwd, 'connection');
    const held = connect({ host: '127.0.0.1', port: fwd.bound[0]!.port });
    held.on('error', () => undefined);
    await carried;
    while (target.sockets.size === 0) await new Promise((r) => setTimeout(r, 5));
    await fwd.close();
    const deadline = Date.now() + 1000;
    while (target.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(target.sockets.size, 0, "the target's end of the closed connection is still open");
  } finally {
    for (const s of target.sockets) s.destroy();
    await closeServer(target.server);
    await pair.close();
  }
});

test('forward: a target the agent does not allow fails that connection with the reason; a busy port fails start', async () => {
  const pair = await loopbackPair({ allow: ['127.0.0.1:1-2'] });
  const target = await echoServer();
  try {
    const fwd = await startForwards(pair.client, { agent: 'ws1', forwards: [{ localPort: 0, target: `127.0.0.1:${target.port}` }], bind: '127.0.0.1' });
    const failed = once(fwd, 'connectionFailed') as Promise<[{ target: string }, Error]>;
    const sock = connect({ host: '127.0.0.1', port: fwd.bound[0]!.port });
    sock.on('error', () => undefined);
    sock.resume();
    const [f, err] = await failed;
    assert.equal(f.target, `127.0.0.1:${target.port}`);
    assert.match(err.message, /is not allowed by the agent \(--allow-target\)/);
    await once(sock, 'close');

    // The same local port again: the second forwarder cannot listen, and says which one.
    await assert.rejects(
      startForwards(pair.client, { agent: 'ws1', forwards: [{ localPort: fwd.bound[0]!.port, target: 'localhost:1' }], bind: '127.0.0.1' }),
      (e: unknown) => e instanceof ForwardListenError && e.code === 'EADDRINUSE' && e.message === 'the port is in use' && e.bind === '127.0.0.1',
    );
    await fwd.close();
  } finally {
    await closeServer(target.server);
    await pair.close();
  }
});

test('ping: typed replies and a summary with the direct loopback path', async () => {
  const pair = await loopbackPair();
  try {
    const started = performance.now();
    await waitForDirect(pair.client, pair.agentKey, 5000);
    const replies: PingReply[] = [];
    const result = await pingPeer(pair.client, {
      peerKey: pair.agentKey,
      peerName: 'ws1',
      count: 3,
      intervalMs: 20,
      timeoutMs: 1000,
      startedAt: started,
      publishedMs: 7,
      onReply: (r) => replies.push(r),
    });
    assert.equal(result.pongs, 3);
    assert.deepEqual(result.replies, replies);
    assert.deepEqual(
      replies.map((r) => r.seq),
      [0, 1, 2],
    );
    for (const r of replies) {
      assert.ok(r.ok);
      assert.equal(r.path, 'direct');
      assert.match(r.endpoint ?? '', /^127\.0\.0\.1:\d+$/);
      assert.ok(r.latencyMs >= 0 && r.latencyMs < 500);
    }
    const s = result.summary;
    // Field for field and in this order: `traverse ping --json` prints it as it is.
    assert.deepEqual(Object.keys(s), ['summary', 'path', 'endpoint', 'transport', 'timeToDirectMs', 'publishedMs', 'reason', 'sent', 'received', 'lossPercent', 'rttMs']);
    assert.equal(s.summary, true);
    assert.equal(s.path, 'direct');
    assert.equal(s.transport, 'udp');
    assert.match(s.endpoint ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(s.publishedMs, 7);
    assert.equal(s.reason, null);
    // The path went direct before pingPeer was called, so it saw no change.
    assert.equal(s.timeToDirectMs, null);
    // As ping(8) sums up.
    assert.equal(s.sent, 3);
    assert.equal(s.received, 3);
    assert.equal(s.lossPercent, 0);
    const rtts = replies.flatMap((r) => (r.ok ? [r.latencyMs] : []));
    assert.deepEqual(s.rttMs && [s.rttMs.min, s.rttMs.max], [Math.min(...rtts), Math.max(...rtts)]);
  } finally {
    await pair.close();
  }
});

test('ping: relay only (--disable-direct) sums up as relay with the reason; a lost pong is a typed reply', async () => {
  const pair = await loopbackPair({ client: { disableDirect: true } });
  try {
    const result = await pingPeer(pair.client, { peerKey: pair.agentKey, peerName: 'ws1', count: 2, intervalMs: 10, timeoutMs: 2000, disabledHere: true, netcheckWaitMs: 500 });
    assert.equal(result.pongs, 2);
    assert.ok(result.replies.every((r) => r.ok && r.path === 'relay' && r.endpoint === null));
    assert.equal(result.summary.path, 'relay');
    assert.equal(result.summary.endpoint, null);
    assert.equal(result.summary.timeToDirectMs, null);
    assert.equal(result.summary.reason, 'direct connections are disabled on this side (--disable-direct)');

    // The agent goes away: no pong, within the timeout.
    pair.agent.close();
    const lost = await pingPeer(pair.client, { peerKey: pair.agentKey, peerName: 'ws1', count: 1, intervalMs: 10, timeoutMs: 150, disabledHere: true, netcheckWaitMs: 10 });
    assert.equal(lost.pongs, 0);
    assert.deepEqual(lost.replies, [{ seq: 0, ok: false, timeoutMs: 150 }]);
    assert.deepEqual([lost.summary.sent, lost.summary.received, lost.summary.lossPercent, lost.summary.rttMs], [1, 0, 100, null]);
  } finally {
    await pair.close();
  }
});

test('ping: a path still being punched is given its moment before the summary calls it relayed', async () => {
  const pair = await loopbackPair();
  try {
    // One ping at once, before any direct path (the pong comes back over the relay), as `ping -n 1` does.
    const result = await pingPeer(pair.client, { peerKey: pair.agentKey, peerName: 'ws1', count: 1, intervalMs: 10, timeoutMs: 2000, directWaitMs: 3000 });
    assert.equal(result.pongs, 1);
    assert.equal(result.summary.path, 'direct', `summary: ${JSON.stringify(result.summary)}`);
    assert.equal(result.summary.reason, null);
  } finally {
    await pair.close();
  }
});

test('the tunnels view carries each side\'s round trip on the direct path, reported now and then', async () => {
  const pair = await loopbackPair({ client: { rttReportMs: 200 } });
  try {
    await waitForDirect(pair.client, pair.agentKey, 5000);
    const view = await eventually(async () => {
      const [t] = pair.t.server.hub.tunnelsView({ kind: 'admin' });
      return t && t.paths.client?.kind === 'direct' && t.rttMs.client !== null ? t : undefined;
    }, 5000);
    assert.ok(view.rttMs.client !== null && view.rttMs.client >= 0 && view.rttMs.client < 500, JSON.stringify(view.rttMs));
  } finally {
    await pair.close();
  }
});

test('a relayed tunnel\'s round trip is measured through the relay and reported too', async () => {
  // Direct off on both sides: the tunnel stays relayed, and only a ping through the relay can time it.
  const pair = await loopbackPair({ client: { disableDirect: true, rttReportMs: 200 }, agent: { disableDirect: true } });
  try {
    const view = await eventually(async () => {
      const [t] = pair.t.server.hub.tunnelsView({ kind: 'admin' });
      return t && t.paths.client?.kind === 'relay' && t.rttMs.client !== null && t.paths.agent?.kind === 'relay' && t.rttMs.agent !== null ? t : undefined;
    }, 5000);
    assert.ok(view.rttMs.client! >= 0 && view.rttMs.client! < 500, JSON.stringify(view.rttMs));
    assert.equal(pair.client.magicsock.pathOf(pair.agentKey).kind, 'relay');
    assert.notEqual(pair.client.magicsock.latencyOf(pair.agentKey), null, 'the engine keeps the relayed round trip');
  } finally {
    await pair.close();
  }
});

test('the tunnels view says how many streams a TCP lane carries, once a stream has moved onto one', async () => {
  const pair = await loopbackPair({ client: { tcpLane: true }, agent: { tcpLane: true } });
  const echo = await echoServer();
  try {
    await waitForDirect(pair.client, pair.agentKey, 5000);
    const stream = await pair.client.streams.open(pair.agentKey, { kind: 'tcp', target: `127.0.0.1:${echo.port}` });
    const view = await eventually(async () => {
      const [t] = pair.t.server.hub.tunnelsView({ kind: 'admin' });
      return t?.streams?.client?.tcp === 1 ? t : undefined;
    }, 8000);
    assert.deepEqual(view.streams?.client, { tcp: 1, udx: 0 });
    stream.destroy();
  } finally {
    await pair.close();
    await closeServer(echo.server);
  }
});

test('speedtest: typed results for both directions over the direct path', async () => {
  const pair = await loopbackPair();
  try {
    const seen: string[] = [];
    const results = await speedtest(pair.client, {
      peerKey: pair.agentKey,
      directions: ['download', 'upload'],
      seconds: 1,
      waitForDirectMs: 5000,
      onResult: (r) => seen.push(r.direction),
    });
    assert.deepEqual(seen, ['download', 'upload']);
    assert.deepEqual(
      results.map((r) => r.direction),
      ['download', 'upload'],
    );
    for (const r of results) {
      assert.deepEqual(Object.keys(r), ['direction', 'path', 'endpoint', 'carrier', 'bytes', 'seconds', 'mbitPerSecond']);
      assert.equal(r.path, 'direct');
      assert.match(r.endpoint ?? '', /^127\.0\.0\.1:\d+$/);
      assert.equal(r.carrier, 'udx');
      assert.ok(r.bytes > 0, `${r.direction}: ${r.bytes} bytes`);
      assert.ok(r.seconds >= 0.9 && r.seconds < 10, `${r.direction}: ${r.seconds} s`);
      assert.ok(Math.abs(r.mbitPerSecond - (r.bytes * 8) / r.seconds / 1e6) < 1e-6);
    }
  } finally {
    await pair.close();
  }
});

test('speedtest: an agent that serves no streams refuses it with a typed error', async () => {
  const t = await startTestServer();
  try {
    const agent = await loopbackNode(t, await t.token('agent', 'ws1'), 'agent');
    const client = await loopbackNode(t, await t.token('client', 'laptop', { allow: ['ws1'] }), 'client');
    try {
      const key = (await client.openTunnel('ws1', 5000)).key;
      await assert.rejects(measure(client, key, 'download', 1), (e: unknown) => e instanceof SpeedtestRefused && /^speedtest refused: /.test(e.message));
    } finally {
      client.close();
      agent.close();
    }
  } finally {
    await t.close();
  }
});

test('proxy: a readable/writable pair joined to one stream; a refused target is a typed error', async () => {
  const pair = await loopbackPair();
  const target = await echoServer();
  try {
    const input = new PassThrough();
    const output = new PassThrough();
    const chunks: Buffer[] = [];
    output.on('data', (d: Buffer) => chunks.push(d));
    const done = proxyStream(pair.client, { peerKey: pair.agentKey, target: `127.0.0.1:${target.port}`, input, output });
    input.write('SSH-2.0-test\r\n');
    input.end('bye');
    await done;
    assert.equal(Buffer.concat(chunks).toString(), 'SSH-2.0-test\r\nbye');

    await assert.rejects(
      proxyStream(pair.client, { peerKey: pair.agentKey, target: '127.0.0.1:1', input: new PassThrough(), output: new PassThrough() }),
      (e: unknown) => e instanceof ProxyError && e.stage === 'open' && e.target === '127.0.0.1:1' && /ECONNREFUSED/.test(e.reason),
    );
  } finally {
    await closeServer(target.server);
    await pair.close();
  }
});

test('netcheck: a one-off report against a local STUN server, sockets closed afterwards', async () => {
  const stun = await startStunServer({ listen: { address: '127.0.0.1', port: 0 }, rateLimit: 0 });
  try {
    const progress: string[] = [];
    const report = await runLocalNetcheck([{ address: '127.0.0.1', port: stun.address.port, family: 4 }], {
      timeoutMs: 1000,
      onProgress: (m) => progress.push(m),
    });
    assert.equal(report.udp, true);
    assert.equal(report.ipv4, true);
    assert.match(report.globalV4 ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(report.servers.length, 1);
    assert.ok(progress.length > 0);

    const none = await runLocalNetcheck([], { timeoutMs: 200 });
    assert.equal(none.udp, false);
  } finally {
    await stun.close();
  }
});
