// A node key belongs to the node that proves it: the attacks of a client that read the agent's
// key in /api/v1/peers, and of a second identity holding a copy of another's key file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode } from '../../src/coordination/protocol.js';
import { keyProof } from '../../src/coordination/key-proof.js';
import { peersResponse } from '../../src/coordination/views.js';
import { NodeKey } from '../../src/identity/node-key.js';
import { RawPeer, eventually, httpGet, randomKey, sampleNode, startTestServer } from './helpers.js';

test('a client that publishes the agent\'s key without holding it is refused; the agent comes back at once', async () => {
  const t = await startTestServer();
  try {
    const agentToken = await t.token('agent', 'dev-box');
    const clientToken = await t.token('client', 'mallory', { allow: ['dev-box'] });
    const agentKey = randomKey();
    const agent = await RawPeer.connect(t.wsUrl, agentToken);
    agent.send({ type: 'node', node: sampleNode(agentKey) });
    // The allowed client reads the agent's key from the API...
    const seen = await eventually(async () => {
      const peers = peersResponse.parse((await httpGet(`${t.server.url}/api/v1/peers`, clientToken)).body).peers;
      return peers.find((p) => p.name === 'dev-box')?.key ?? undefined;
    });
    assert.equal(seen, agentKey);
    agent.ws.close();
    await agent.waitClosed();
    await eventually(() => t.server.hub.agent('dev-box') === undefined);

    // ...and publishes it while the agent is away: with no proof, then with a made-up one.
    for (const proof of [undefined, 'ab'.repeat(32)]) {
      const squatter = await RawPeer.connect(t.wsUrl, clientToken);
      squatter.ws.send(JSON.stringify({ type: 'node', node: sampleNode(agentKey), ...(proof ? { proof } : {}) }));
      const closed = await squatter.waitClosed();
      assert.equal(closed.code, CloseCode.keyProof);
      assert.match(closed.reason, /key proof is missing or wrong/);
    }

    // A proof made for another connection's challenge is no good either (replayed from the wire).
    const other = await RawPeer.connect(t.wsUrl, clientToken);
    const config = other.messages[0];
    assert.ok(config?.type === 'config');
    const victim = await RawPeer.connect(t.wsUrl, clientToken);
    const mallorysKey = NodeKey.generate();
    const stolen = keyProof(mallorysKey.sharedSecret(Buffer.from(config.challenge.key, 'hex')), config.challenge.nonce, mallorysKey.publicHex);
    victim.ws.send(JSON.stringify({ type: 'node', node: sampleNode(mallorysKey.publicHex), proof: stolen }));
    assert.equal((await victim.waitClosed()).code, CloseCode.keyProof);
    other.ws.close();

    // The real agent connects at once and keeps its key.
    const back = await RawPeer.connect(t.wsUrl, agentToken);
    back.send({ type: 'node', node: sampleNode(agentKey) });
    await eventually(() => t.server.hub.agent('dev-box')?.node?.key === agentKey);
    assert.equal(back.closed, null);
    const owner = (await t.store.listIdentities()).find((i) => i.nodeKey === agentKey);
    assert.equal(owner?.name, 'dev-box', 'the database records the key as the agent\'s');
  } finally {
    await t.close();
  }
});

test('a key stays with the identity that first proved it', async () => {
  const t = await startTestServer();
  try {
    const key = randomKey();
    const first = await RawPeer.connect(t.wsUrl, await t.token('client', 'alice'));
    first.send({ type: 'node', node: sampleNode(key) });
    await eventually(() => t.server.hub.nodesOf('client', 'alice')[0]?.node !== null);
    first.ws.close();
    await first.waitClosed();
    // bob holds a copy of the same private key (a copied key file): his proof is right, but the key is alice's.
    const bob = await RawPeer.connect(t.wsUrl, await t.token('client', 'bob'));
    bob.send({ type: 'node', node: sampleNode(key) });
    const closed = await bob.waitClosed();
    assert.equal(closed.code, CloseCode.keyProof);
    assert.match(closed.reason, /belongs to another identity/);
  } finally {
    await t.close();
  }
});
