// Relay lanes between two PeerNodes on loopback: a relayed stream (the client has
// --disable-direct) moves from relayed UDX datagrams onto a byte stream through the server, keeps
// every byte, and stays on datagrams when either side turns lanes off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { connect, createServer, type AddressInfo } from 'node:net';
import { startForwards } from '../../src/node/forward.js';
import type { PeerNodeOptions } from '../../src/node/peer-node.js';
import { measure } from '../../src/node/speedtest.js';
import { NodeKey } from '../../src/identity/node-key.js';
import { dialRelayLane } from '../../src/node/relay-lane-dial.js';
import { startTestServer, eventually } from '../server/helpers.js';
import { loopbackNode, loopbackPair, type LoopbackPair } from './loopback-node.js';
import { echoThrough, startEcho } from '../helpers/echo.js';

/** The client has --disable-direct; the server relays without a rate limit. */
function relayedPair(client: Partial<PeerNodeOptions> = {}, agent: Partial<PeerNodeOptions> = {}): Promise<LoopbackPair> {
  return loopbackPair({ server: { limits: { relayBytesPerSec: 0 } }, client: { disableDirect: true, ...client }, agent });
}

test('a relayed stream moves onto a relay lane: 32 MiB each way intact through a forward, the server splices one lane', async () => {
  const pair = await relayedPair();
  const data = randomBytes(32 << 20);
  const want = createHash('sha256').update(data).digest('hex');
  // The target sends the data and hashes what it receives.
  let gotHash = '';
  const target = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    s.on('data', (d: Buffer) => h.update(d));
    s.on('end', () => {
      gotHash = h.digest('hex');
      s.end();
    });
    s.write(data);
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  try {
    const moves: string[] = [];
    pair.client.streams.on('carrier', (_p, _sid, path, kind) => moves.push(`${path.kind}/${kind}`));
    const fwd = await startForwards(pair.client, { agent: 'ws1', forwards: [{ localPort: 0, target: `127.0.0.1:${(target.address() as AddressInfo).port}` }], bind: '127.0.0.1' });
    const sock = connect({ host: '127.0.0.1', port: fwd.bound[0]!.port, allowHalfOpen: true });
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
      if (n === data.length) sock.end(data);
    });
    await once(sock, 'end');
    assert.equal(n, data.length);
    assert.equal(h.digest('hex'), want, 'the download arrived intact');
    await eventually(async () => (gotHash ? true : undefined), 10_000);
    assert.equal(gotHash, want, 'the upload arrived intact');
    assert.ok(moves.includes('relay/relay-lane'), `the stream moved onto a relay lane: ${moves.join(', ')}`);
    sock.destroy();
    await fwd.close();
  } finally {
    target.close();
    await pair.close();
  }
});

test('speedtest over the relay reports the relay lane; with --no-relay-lane on either side it stays on datagrams', async () => {
  const on = await relayedPair();
  try {
    const r = await measure(on.client, on.agentKey, 'download', 1);
    assert.equal(r.path, 'relay');
    assert.equal(r.carrier, 'relay-lane');
    assert.ok(r.bytes > 0);
  } finally {
    await on.close();
  }
  for (const [client, agent] of [[{ relayLane: false }, {}], [{}, { relayLane: false }]] as const) {
    const off = await relayedPair(client, agent);
    try {
      const r = await measure(off.client, off.agentKey, 'download', 1);
      assert.equal(r.path, 'relay');
      assert.equal(r.carrier, 'udx', JSON.stringify({ client, agent }));
    } finally {
      await off.close();
    }
  }
});

test('the server joins a lane only between the two ends of a tunnel, each asking with its own token, within the relay rate', async () => {
  const t = await startTestServer({ limits: { relayBytesPerSec: 1 << 20 } });
  const agentToken = await t.token('agent', 'ws1');
  const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
  const strangerToken = await t.token('client', 'stranger', { allow: [] });
  const [ka, kc, ks] = [NodeKey.generate(), NodeKey.generate(), NodeKey.generate()];
  const agent = await loopbackNode(t, agentToken, 'agent', { key: ka });
  const client = await loopbackNode(t, clientToken, 'client', { key: kc });
  const stranger = await loopbackNode(t, strangerToken, 'client', { key: ks });
  const server = t.server.url;
  const a = ka.publicHex;
  const c = kc.publicHex;
  const dial = (token: string, role: 'agent' | 'client', nodeKey: string, peerKey: string, lane: Buffer) =>
    dialRelayLane({ server, token, role, nodeKey, peerKey, lane, timeoutMs: 3000 });
  try {
    await client.openTunnel('ws1', 5000);
    const lane = randomBytes(16);
    // Not this token's node, no tunnel, an unknown token: refused with the server's reason.
    await assert.rejects(dial(clientToken, 'client', a, c, lane), /not connected with this token/);
    await assert.rejects(dial(strangerToken, 'client', ks.publicHex, a, lane), /no tunnel between these nodes/);
    await assert.rejects(dial('not-a-token', 'client', c, a, lane), /token/);
    // The two ends, each with its own token: joined. A third request for the lane id is refused.
    const first = dial(clientToken, 'client', c, a, lane);
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(dial(clientToken, 'client', c, a, lane), /lane id is taken/);
    const [sc, sa] = await Promise.all([first, dial(agentToken, 'agent', a, c, lane)]);
    // 3 MiB from the client at 1 MiB/s with a 1 MiB burst: about 2 s, and every byte in order.
    const data = randomBytes(3 << 20);
    const started = performance.now();
    sc.end(data);
    const chunks: Buffer[] = [];
    sa.on('data', (d: Buffer) => chunks.push(d));
    sa.resume();
    await once(sa, 'end');
    const ms = performance.now() - started;
    const got = Buffer.concat(chunks);
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data), 'the bytes arrived as sent');
    assert.ok(ms > 1500, `the relay rate bounds the lane (${Math.round(ms)} ms for 3 MiB at 1 MiB/s)`);
    sc.destroy();
    sa.destroy();
  } finally {
    stranger.close();
    client.close();
    agent.close();
    await t.close();
  }
});

test('forty streams opened at once each move onto a relay lane, and a later stream still gets one', async () => {
  // The agent answers at most 16 relay-lane offers per client at once, and the server keeps 16
  // requests per node waiting. An offer beyond those goes unanswered until a lane has opened and
  // freed its place; the client's resends of it then get the answer. Had they timed out instead,
  // relay lanes to the agent would count as failed, and every stream stay on datagrams a minute.
  const pair = await relayedPair();
  const { target, server: echo } = await startEcho();
  const streams: Duplex[] = [];
  try {
    const { client, agentKey } = pair;
    const opened = await Promise.all(Array.from({ length: 40 }, () => client.streams.open(agentKey, { kind: 'tcp', target })));
    streams.push(...opened);
    const onLanes = (): number => opened.filter((s) => client.streams.carrierKind(s) === 'relay-lane').length;
    await eventually(async () => (onLanes() === 40 ? true : undefined), 15_000).catch(() => undefined);
    assert.equal(onLanes(), 40, 'every stream ended up on a relay lane');
    const later = await client.streams.open(agentKey, { kind: 'tcp', target });
    streams.push(later);
    await eventually(async () => (client.streams.carrierKind(later) === 'relay-lane' ? true : undefined), 5000).catch(() => undefined);
    assert.equal(client.streams.carrierKind(later), 'relay-lane', 'relay lanes were not given up on');
    // And they carry bytes: each stream echoes its own.
    await Promise.all(
      opened.slice(0, 8).map(async (s) => {
        const data = randomBytes(64 << 10);
        assert.ok((await echoThrough(s, data)).equals(data));
      }),
    );
  } finally {
    for (const s of streams) s.destroy();
    echo.close();
    await pair.close();
  }
});
