// Bad input, lost peers, rate limits and a server restart with the real CoordinatorClient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinatorClient, type PeerInfo } from '../../src/node/coordinator-client.js';
import { CloseCode, MAX_TEXT_BYTES } from '../../src/coordination/protocol.js';
import { RawPeer, eventually, proverFor, randomKey, sampleNode, startTestServer } from '../server/helpers.js';

test('malformed messages close that connection with 1008 and a reason; others are served', async () => {
  const t = await startTestServer();
  try {
    const bystander = await RawPeer.connect(t.wsUrl, await t.token('agent', 'bystander'));
    const cases: [unknown, RegExp][] = [
      ['{not json', /not JSON/],
      [{ type: 'node', node: { ...sampleNode(randomKey()), key: 'ABC' } }, /node\.key/],
      [{ type: 'node', node: sampleNode(randomKey(), Array.from({ length: 33 }, (_, i) => `192.0.2.1:${1000 + i}`)) }, /endpoints/],
      [{ type: 'launch-missiles' }, /type/],
      [{ type: 'tunnel', agent: 'x'.repeat(65) }, /agent/],
    ];
    for (const [i, [msg, reason]] of cases.entries()) {
      const peer = await RawPeer.connect(t.wsUrl, await t.token('agent', `bad${i}`));
      peer.send(msg);
      const closed = await peer.waitClosed();
      assert.equal(closed.code, CloseCode.policy, JSON.stringify(msg));
      assert.match(closed.reason, reason);
    }
    const big = await RawPeer.connect(t.wsUrl, await t.token('agent', 'big'));
    big.send('x'.repeat(MAX_TEXT_BYTES + 1));
    assert.equal((await big.waitClosed()).code, CloseCode.tooBig);
    bystander.send({ type: 'node', node: sampleNode(randomKey()) });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(bystander.closed, null);
    assert.equal(t.server.hub.size, 1);
  } finally {
    await t.close();
  }
});

test('a flood of messages is cut off by the per-connection rate limit', async () => {
  const t = await startTestServer({ limits: { messagesPerSec: 10 } });
  try {
    const peer = await RawPeer.connect(t.wsUrl, await t.token('agent', 'noisy'));
    const node = sampleNode(randomKey());
    for (let i = 0; i < 100; i++) peer.send({ type: 'node', node });
    const closed = await peer.waitClosed();
    assert.equal(closed.code, CloseCode.policy);
    assert.match(closed.reason, /too many messages/);
  } finally {
    await t.close();
  }
});

test('a peer that stops answering pings is lost within two intervals and its tunnel peers are told', async () => {
  const t = await startTestServer({ pingIntervalMs: 150 });
  try {
    const agent = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    const client = await RawPeer.connect(t.wsUrl, await t.token('client', 'laptop', { allow: ['ws1'] }));
    const agentKey = randomKey();
    agent.send({ type: 'node', node: sampleNode(agentKey) });
    client.send({ type: 'node', node: sampleNode(randomKey()) });
    client.send({ type: 'tunnel', agent: 'ws1' });
    await client.waitFor((m) => m.type === 'peers');
    // The agent's process freezes: its socket is no longer read, so no pong goes back.
    (agent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    const lost = await client.waitFor((m) => m.type === 'peers' && m.updates.some((u) => u.kind === 'lost'), 2000);
    assert.deepEqual(lost.type === 'peers' && lost.updates[0], { kind: 'lost', name: 'ws1', peerKind: 'agent', key: agentKey });
    assert.ok(Date.now() - started <= 1000, `lost after ${Date.now() - started} ms`);
    client.ws.close();
  } finally {
    await t.close();
  }
});

test('a server restart keeps identities and rules; the client reconnects and republishes', async () => {
  const t = await startTestServer();
  const backoff = { baseMs: 50, maxMs: 200 };
  const agentKey = randomKey();
  const clientKey = randomKey();
  const agent = new CoordinatorClient({ url: t.server.url, token: await t.token('agent', 'ws1'), key: agentKey, role: 'agent', proveKey: proverFor(agentKey), backoff });
  const client = new CoordinatorClient({
    url: t.server.url,
    token: await t.token('client', 'laptop', { allow: ['ws1'] }),
    key: clientKey,
    role: 'client',
    proveKey: proverFor(clientKey),
    backoff,
  });
  try {
    const config = await agent.connect();
    assert.equal(config.identity.name, 'ws1');
    await client.connect();
    agent.publishNode({ endpoints: ['198.51.100.7:41641'], preferredRelay: 'default' });
    client.publishNode({ endpoints: ['203.0.113.9:5000'], preferredRelay: 'default' });
    const seen: PeerInfo[] = [];
    client.on('peer', (p) => seen.push(p));
    const agentSaw: PeerInfo[] = [];
    agent.on('peer', (p) => agentSaw.push(p));
    client.requestTunnel('ws1');
    await eventually(() => seen.length > 0 && agentSaw.length > 0);
    assert.equal(seen[0]!.name, 'ws1');
    assert.equal(seen[0]!.node.key, agentKey);
    // Relay through the client API.
    const got: [string, Buffer][] = [];
    agent.on('relay', (from, payload) => got.push([from, payload]));
    assert.ok(client.sendRelay(agentKey, Buffer.from('ping')));
    await eventually(() => got.length > 0);
    assert.deepEqual([got[0]![0], got[0]![1].toString()], [clientKey, 'ping']);

    const states: string[] = [];
    client.on('state', (s) => states.push(s));
    seen.length = 0;
    agentSaw.length = 0;
    await t.restart();
    // Both come back by themselves, republish and ask for the tunnel again.
    await eventually(() => seen.length > 0 && agentSaw.length > 0, 5000, 'nodes after restart');
    assert.equal(seen.at(-1)!.node.endpoints[0], '198.51.100.7:41641');
    assert.equal(agentSaw.at(-1)!.node.key, clientKey);
    assert.ok(states.includes('reconnecting') && states.at(-1) === 'connected', states.join(','));
    assert.equal((await t.store.allowedAgents('laptop'))[0], 'ws1');
  } finally {
    agent.close();
    client.close();
    await t.close();
  }
});

test('the client stops for good when its token is refused', async () => {
  const t = await startTestServer();
  try {
    const c = new CoordinatorClient({ url: t.server.url, token: 'trv1_' + 'B'.repeat(43), key: randomKey(), role: 'client', proveKey: () => '00'.repeat(32) });
    await assert.rejects(c.connect(), /the server does not know this token; check TRAVERSE_TOKEN/);
    assert.equal(c.state, 'closed');
  } finally {
    await t.close();
  }
});
