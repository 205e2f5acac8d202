// One node per process: several nodes of one client identity side by side, one agent node per
// agent identity, and token kinds checked against the role a node asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, type ServerMessage } from '../../src/coordination/protocol.js';
import { encodeRelayFrame } from '../../src/coordination/relay-frame.js';
import { peersResponse, tunnelsResponse } from '../../src/coordination/views.js';
import { RawPeer, eventually, httpGet, randomKey, relayFrame, sampleNode, startTestServer, upgradeStatus } from './helpers.js';

type Peers = Extract<ServerMessage, { type: 'peers' }>;
const nodeWithKey = (key: string) => (m: ServerMessage): m is Peers =>
  m.type === 'peers' && m.updates.some((u) => u.kind === 'node' && u.node.key === key);
const goneWithKey = (key: string) => (m: ServerMessage): m is Peers =>
  m.type === 'peers' && m.updates.some((u) => u.kind !== 'node' && u.key === key);

const messageOf = (body: string): string => (JSON.parse(body) as { message: string }).message;

async function joinWithNode(url: string, token: string, key: string, role?: 'agent' | 'client'): Promise<RawPeer> {
  const peer = await RawPeer.connect(url, token, role);
  peer.send({ type: 'node', node: sampleNode(key) });
  return peer;
}

test('two nodes of one client identity each get their own tunnel, relay and departure', async () => {
  const t = await startTestServer();
  try {
    const agentKey = randomKey();
    const agent = await joinWithNode(t.wsUrl, await t.token('agent', 'ws1'), agentKey);
    const token = await t.token('client', 'laptop', { allow: ['ws1'] });
    const [k1, k2] = [randomKey(), randomKey()];
    const n1 = await joinWithNode(t.wsUrl, token, k1);
    const n2 = await joinWithNode(t.wsUrl, token, k2);
    n1.send({ type: 'tunnel', agent: 'ws1' });
    n2.send({ type: 'tunnel', agent: 'ws1' });
    // The agent learns both nodes; neither replaced the other.
    await agent.waitFor(nodeWithKey(k1));
    await agent.waitFor(nodeWithKey(k2));
    await n1.waitFor(nodeWithKey(agentKey));
    await n2.waitFor(nodeWithKey(agentKey));
    assert.equal(n1.closed, null);
    assert.equal(t.server.hub.size, 3);

    // The relay reaches each node by its own key, and says which node sent.
    agent.ws.send(encodeRelayFrame(k1, Buffer.from('to one')));
    agent.ws.send(encodeRelayFrame(k2, Buffer.from('to two')));
    await eventually(() => n1.binary.length === 1 && n2.binary.length === 1);
    assert.equal(relayFrame(n1.binary[0]!).payload.toString(), 'to one');
    assert.equal(relayFrame(n2.binary[0]!).payload.toString(), 'to two');
    n2.ws.send(encodeRelayFrame(agentKey, Buffer.from('from two')));
    await eventually(() => agent.binary.length === 1);
    assert.equal(relayFrame(agent.binary[0]!).key, k2);

    // The API lists both nodes of the identity, and a tunnel per node.
    const admin = await t.token('admin', 'root');
    const peers = peersResponse.parse((await httpGet(`${t.server.url}/api/v1/peers`, admin)).body).peers;
    assert.deepEqual(peers.filter((p) => p.name === 'laptop').map((p) => p.key).sort(), [k1, k2].sort());
    const tunnels = tunnelsResponse.parse((await httpGet(`${t.server.url}/api/v1/tunnels`, admin)).body).tunnels;
    assert.deepEqual(tunnels.map((x) => x.clientKey).sort(), [k1, k2].sort());
    assert.ok(tunnels.every((x) => x.agentKey === agentKey && x.client === 'laptop'));

    // One node leaving is that node only: the agent is told its key, the other keeps its tunnel.
    n1.ws.close();
    const gone = await agent.waitFor(goneWithKey(k1));
    assert.ok(gone.updates.every((u) => u.kind === 'node' || u.key === k1));
    agent.ws.send(encodeRelayFrame(k2, Buffer.from('still here')));
    await eventually(() => n2.binary.length === 2);
    assert.equal(n2.closed, null);
  } finally {
    await t.close();
  }
});

test('a client identity has at most maxNodesPerClient nodes; the next is refused with the reason', async () => {
  const t = await startTestServer({ limits: { maxNodesPerClient: 3 } });
  try {
    const token = await t.token('client', 'laptop');
    const nodes = await Promise.all([0, 1, 2].map(() => joinWithNode(t.wsUrl, token, randomKey())));
    const fourth = await RawPeer.open(t.wsUrl, token);
    const closed = await fourth.waitClosed();
    assert.equal(closed.code, CloseCode.tooManyNodes);
    assert.match(closed.reason, /already has 3 connected nodes \(at most 3\)/);
    assert.ok(nodes.every((n) => n.closed === null));
    // Once one goes, there is room again.
    nodes[0]!.ws.close();
    await nodes[0]!.waitClosed();
    await eventually(() => t.server.hub.size === 2);
    const again = await joinWithNode(t.wsUrl, token, randomKey());
    assert.equal(again.closed, null);
  } finally {
    await t.close();
  }
});

test('a new agent process replaces the old one, and both are told', async () => {
  const t = await startTestServer();
  try {
    const token = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const [oldKey, newKey] = [randomKey(), randomKey()];
    const first = await joinWithNode(t.wsUrl, token, oldKey);
    const client = await joinWithNode(t.wsUrl, clientToken, randomKey());
    client.send({ type: 'tunnel', agent: 'ws1' });
    await client.waitFor(nodeWithKey(oldKey));
    const second = await joinWithNode(t.wsUrl, token, newKey);
    const closed = await first.waitClosed();
    assert.equal(closed.code, CloseCode.replaced);
    assert.match(closed.reason, /replaced by a newer agent process of "ws1"/);
    const config = second.messages[0];
    assert.ok(config?.type === 'config' && /replaced the previous agent process of "ws1"/.test(config.notice ?? ''));
    // The client sees the old node go and the new one come.
    await client.waitFor(goneWithKey(oldKey));
    await client.waitFor(nodeWithKey(newKey));
    assert.equal(t.server.hub.nodesOf('agent', 'ws1').length, 1);
  } finally {
    await t.close();
  }
});

test('token kinds are checked against the role before the node joins', async () => {
  const t = await startTestServer();
  try {
    const agentToken = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const adminToken = await t.token('admin', 'root');
    const agent = await joinWithNode(t.wsUrl, agentToken, randomKey());
    // A client command given the agent's token is refused, and the running agent stays.
    const asClient = await upgradeStatus(t.wsUrl, agentToken, 'client');
    assert.equal(asClient.status, 403);
    assert.match(messageOf(asClient.body), /needs a client token .*; the token given is the agent token of "ws1"/);
    const asAgent = await upgradeStatus(t.wsUrl, clientToken, 'agent');
    assert.equal(asAgent.status, 403);
    assert.match(messageOf(asAgent.body), /traverse agent` needs an agent token .*; the token given is the client token of "laptop"/);
    assert.equal((await upgradeStatus(t.wsUrl, adminToken, 'client')).status, 403);
    assert.equal((await upgradeStatus(t.wsUrl, adminToken, 'agent')).status, 403);
    assert.equal((await upgradeStatus(t.wsUrl, clientToken, 'nonsense')).status, 400);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(agent.closed, null);
    assert.equal(t.server.hub.nodesOf('agent', 'ws1').length, 1);
  } finally {
    await t.close();
  }
});
