// Endpoint exchange, access rules, views and connection history over real connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PeerUpdate, type ServerMessage } from '../../src/coordination/protocol.js';
import { RawPeer, httpGet, randomKey, sampleNode, startTestServer } from './helpers.js';

type Peers = Extract<ServerMessage, { type: 'peers' }>;
const nodeOf = (name: string) => (m: ServerMessage): m is Peers =>
  m.type === 'peers' && m.updates.some((u) => u.kind === 'node' && u.name === name);
const updateOf = (kind: PeerUpdate['kind'], name: string) => (m: ServerMessage): m is Peers =>
  m.type === 'peers' && m.updates.some((u) => u.kind === kind && u.name === name);

test('config at connect carries STUN servers, relay and block-direct', async () => {
  const t = await startTestServer({ stun: ['192.0.2.1:3478'], blockDirect: true, embeddedStun: { host: '0.0.0.0', port: 3479 } });
  try {
    const peer = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    const config = peer.messages[0];
    assert.equal(config?.type, 'config');
    if (config?.type !== 'config') return;
    assert.deepEqual(config.identity, { name: 'ws1', kind: 'agent' });
    // The embedded server comes first, under the host name the peer used to reach us.
    assert.deepEqual(config.stun, ['127.0.0.1:3479', '192.0.2.1:3478']);
    assert.equal(config.blockDirect, true);
    assert.deepEqual(config.relay, { enabled: true, maxPayload: 4096 });
    peer.ws.close();
  } finally {
    await t.close();
  }
});

test('an allowed client and its agent receive each other\'s nodes, names and kinds', async () => {
  const t = await startTestServer();
  try {
    const agent = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    const client = await RawPeer.connect(t.wsUrl, await t.token('client', 'laptop', { allow: ['ws1'] }));
    const agentKey = randomKey();
    const clientKey = randomKey();
    agent.send({ type: 'node', node: { ...sampleNode(agentKey, ['198.51.100.7:41641', '10.0.0.5:41641']), netcheck: { udp: true, mapping: 'endpoint-independent', hairpinning: false } } });
    client.send({ type: 'node', node: sampleNode(clientKey, ['203.0.113.9:5000']) });
    client.send({ type: 'tunnel', agent: 'ws1' });
    const state = await client.waitFor((m) => m.type === 'tunnel');
    assert.deepEqual(state, { type: 'tunnel', agent: 'ws1', status: 'open' });
    const toClient = await client.waitFor(nodeOf('ws1'));
    const u = toClient.updates[0]!;
    assert.equal(u.kind, 'node');
    if (u.kind === 'node') {
      assert.equal(u.peerKind, 'agent');
      assert.equal(u.node.key, agentKey);
      assert.deepEqual(u.node.endpoints, ['198.51.100.7:41641', '10.0.0.5:41641']);
      assert.deepEqual(u.node.netcheck, { udp: true, mapping: 'endpoint-independent', hairpinning: false });
    }
    const toAgent = await agent.waitFor(nodeOf('laptop'));
    assert.equal(toAgent.updates[0]?.kind === 'node' && toAgent.updates[0].node.key, clientKey);
    // Updates fan out as they happen.
    agent.send({ type: 'node', node: sampleNode(agentKey, ['198.51.100.7:40000']) });
    await client.waitFor((m) => m.type === 'peers' && m.updates.some((x) => x.kind === 'node' && x.node.endpoints[0] === '198.51.100.7:40000'));
    // A clean close is "disconnected".
    agent.ws.close(1000);
    const gone = await client.waitFor(updateOf('disconnected', 'ws1'));
    assert.deepEqual(gone.updates[0], { kind: 'disconnected', name: 'ws1', peerKind: 'agent', key: agentKey });
    client.ws.close();
  } finally {
    await t.close();
  }
});

test('a client waiting for an offline agent gets it when the agent arrives', async () => {
  const t = await startTestServer();
  try {
    const client = await RawPeer.connect(t.wsUrl, await t.token('client', 'laptop', { allow: ['ws1'] }));
    client.send({ type: 'node', node: sampleNode(randomKey()) });
    client.send({ type: 'tunnel', agent: 'ws1' });
    assert.deepEqual(await client.waitFor((m) => m.type === 'tunnel'), { type: 'tunnel', agent: 'ws1', status: 'waiting' });
    const agent = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    await agent.waitFor(nodeOf('laptop')); // sent at connect, before the agent publishes
    agent.send({ type: 'node', node: sampleNode(randomKey()) });
    await client.waitFor(nodeOf('ws1'));
    agent.ws.close();
    client.ws.close();
  } finally {
    await t.close();
  }
});

test('access rules: no tunnel, no node and no view of an agent the client may not reach; agents cannot open tunnels', async () => {
  const t = await startTestServer();
  try {
    const secret = await RawPeer.connect(t.wsUrl, await t.token('agent', 'secret'));
    secret.send({ type: 'node', node: sampleNode(randomKey()) });
    const ws1 = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    ws1.send({ type: 'node', node: sampleNode(randomKey()) });
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const client = await RawPeer.connect(t.wsUrl, clientToken);
    client.send({ type: 'node', node: sampleNode(randomKey()) });
    client.send({ type: 'tunnel', agent: 'secret' });
    client.send({ type: 'tunnel', agent: 'nonexistent' });
    const refused = await client.waitFor((m) => m.type === 'tunnel' && m.agent === 'secret');
    const unknown = await client.waitFor((m) => m.type === 'tunnel' && m.agent === 'nonexistent');
    assert.deepEqual({ ...refused, agent: 'x' }, { ...unknown, agent: 'x' }); // nothing learned
    assert.equal(refused.type === 'tunnel' && refused.status, 'refused');
    // The agent may not open a tunnel.
    ws1.send({ type: 'tunnel', agent: 'secret' });
    const err = await ws1.waitFor((m) => m.type === 'error');
    assert.equal(err.type === 'error' && err.code, 'forbidden');
    // The HTTP view of the client shows only what it may reach.
    const view = await httpGet(`${t.server.url}/api/v1/peers`, clientToken);
    const names = (view.body as { peers: { name: string }[] }).peers.map((p) => p.name).sort();
    assert.deepEqual(names, ['laptop', 'ws1']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(client.messages.some(nodeOf('secret')), false);
    assert.equal(secret.messages.some(nodeOf('laptop')), false);
    for (const p of [secret, ws1, client]) p.ws.close();
  } finally {
    await t.close();
  }
});

test('the views: tunnels with reported paths, admin sees all; history is stored', async () => {
  const t = await startTestServer();
  try {
    const agent = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const client = await RawPeer.connect(t.wsUrl, clientToken);
    const other = await RawPeer.connect(t.wsUrl, await t.token('client', 'other', { allow: [] }));
    const agentKey = randomKey();
    const clientKey = randomKey();
    agent.send({ type: 'node', node: sampleNode(agentKey) });
    client.send({ type: 'node', node: sampleNode(clientKey) });
    client.send({ type: 'tunnel', agent: 'ws1' });
    await client.waitFor(nodeOf('ws1'));
    await agent.waitFor(nodeOf('laptop'));
    client.send({ type: 'path', peer: agentKey, path: { kind: 'direct', endpoint: '198.51.100.7:41641' } });
    agent.send({ type: 'path', peer: clientKey, path: { kind: 'relay' } });
    const admin = await t.token('admin', 'ops');
    const tunnels = await (async () => {
      for (;;) {
        const r = await httpGet(`${t.server.url}/api/v1/tunnels`, admin);
        const list = (r.body as { tunnels: { paths: { client: unknown; agent: unknown } }[] }).tunnels;
        if (list[0]?.paths.client && list[0].paths.agent) return list;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    assert.equal(tunnels.length, 1);
    assert.deepEqual(tunnels[0]!.paths, { client: { kind: 'direct', endpoint: '198.51.100.7:41641' }, agent: { kind: 'relay' } });
    const adminPeers = (await httpGet(`${t.server.url}/api/v1/peers`, admin)).body as { peers: unknown[] };
    assert.equal(adminPeers.peers.length, 3);
    const mine = (await httpGet(`${t.server.url}/api/v1/tunnels`, clientToken)).body as { tunnels: unknown[] };
    assert.equal(mine.tunnels.length, 1);
    const none = (await httpGet(`${t.server.url}/api/v1/tunnels`, await t.token('client', 'other'))).body as { tunnels: unknown[] };
    assert.equal(none.tunnels.length, 0);
    other.ws.close(1000);
    await other.waitClosed();
    const id = (await t.store.findIdentity('client', 'other'))!.id;
    const history = await (async () => {
      for (;;) {
        const h = await t.store.connectionHistory(id, 10);
        if (h[0]?.disconnectedAt) return h;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    assert.match(history[0]!.reason ?? '', /^disconnected/);
    assert.equal((await t.store.findIdentity('agent', 'ws1'))!.nodeKey, agentKey);
    agent.ws.close();
    client.ws.close();
  } finally {
    await t.close();
  }
});

