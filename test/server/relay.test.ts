// The relay over real WebSockets: delivery between tunnel peers, refusal otherwise, bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, MAX_RELAY_PAYLOAD } from '../../src/coordination/protocol.js';
import { encodeRelayFrame } from '../../src/coordination/relay-frame.js';
import { decodeRelayBatch, encodeRelayBatch, RELAY_BATCH_FORMAT, RELAY_FRAMES_HEADER, type RelayBatch } from '../../src/coordination/relay-batch.js';
import { RawPeer, eventually, randomKey, relayFrame, sampleNode, startTestServer } from './helpers.js';

const BATCHES = { [RELAY_FRAMES_HEADER]: String(RELAY_BATCH_FORMAT) };

/** An agent and a client with a tunnel; each asks for relay batches (format 2) if told to. */
async function pair(t: Awaited<ReturnType<typeof startTestServer>>, batches: { agent?: boolean; client?: boolean } = {}) {
  const agent = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'), undefined, batches.agent ? BATCHES : {});
  const client = await RawPeer.connect(t.wsUrl, await t.token('client', 'laptop', { allow: ['ws1'] }), undefined, batches.client ? BATCHES : {});
  const agentKey = randomKey();
  const clientKey = randomKey();
  agent.send({ type: 'node', node: sampleNode(agentKey) });
  client.send({ type: 'node', node: sampleNode(clientKey) });
  client.send({ type: 'tunnel', agent: 'ws1' });
  await client.waitFor((m) => m.type === 'peers');
  await agent.waitFor((m) => m.type === 'peers');
  return { agent, client, agentKey, clientKey };
}

test('datagrams go both ways between tunnel peers, stamped with the source key', async () => {
  const t = await startTestServer();
  try {
    const { agent, client, agentKey, clientKey } = await pair(t);
    client.ws.send(encodeRelayFrame(agentKey, Buffer.from('hello agent')));
    const [down] = await agent.waitBinary(1);
    const frame = relayFrame(down!);
    assert.equal(frame.key, clientKey);
    assert.equal(frame.payload.toString(), 'hello agent');
    const big = Buffer.alloc(MAX_RELAY_PAYLOAD, 7);
    agent.ws.send(encodeRelayFrame(clientKey, big));
    const [back] = await client.waitBinary(1);
    assert.equal(relayFrame(back!).key, agentKey);
    assert.ok(relayFrame(back!).payload.equals(big));
    const sent = await t.server.metrics.relayDatagrams.get();
    assert.equal(sent.values[0]?.value, 2);
    agent.ws.close();
    client.ws.close();
  } finally {
    await t.close();
  }
});

test('no tunnel, no delivery: datagrams to a peer without a tunnel are dropped and counted', async () => {
  const t = await startTestServer();
  try {
    const { agent, agentKey } = await pair(t);
    const stranger = await RawPeer.connect(t.wsUrl, await t.token('client', 'stranger', { allow: [] }));
    stranger.send({ type: 'node', node: sampleNode(randomKey()) });
    await new Promise((r) => setTimeout(r, 50));
    stranger.ws.send(encodeRelayFrame(agentKey, Buffer.from('let me in')));
    await eventually(async () => (await t.server.metrics.relayDrops.get()).values.length > 0);
    const drops = await t.server.metrics.relayDrops.get();
    assert.deepEqual(drops.values.map((v) => [v.labels.reason, v.value]), [['no-tunnel', 1]]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(agent.binary.length, 0);
    assert.equal(stranger.closed, null);
  } finally {
    await t.close();
  }
});

test('a node that keeps relaying to no one is charged for it and disconnected within a bounded time', async () => {
  const t = await startTestServer();
  try {
    const { agent, agentKey } = await pair(t);
    const flooder = await RawPeer.connect(t.wsUrl, await t.token('client', 'flooder', { allow: [] }));
    flooder.send({ type: 'node', node: sampleNode(randomKey()) });
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    const payload = Buffer.alloc(4096, 7);
    // 8 MiB at once to an agent it has no tunnel to (the attack pushed 250 MiB/s for 10 s).
    for (let i = 0; i < 2048 && flooder.closed === null; i++) flooder.ws.send(encodeRelayFrame(agentKey, payload));
    const closed = await flooder.waitClosed();
    const ms = performance.now() - started;
    assert.equal(closed.code, CloseCode.policy);
    assert.match(closed.reason, /without a tunnel/);
    // A second on a quiet machine; the bound leaves room for a loaded one.
    assert.ok(ms < 3000, `disconnected after ${Math.round(ms)} ms`);
    assert.equal(agent.binary.length, 0, 'nothing reached the agent');
    const drops = new Map((await t.server.metrics.relayDrops.get()).values.map((v) => [v.labels.reason, v.value]));
    assert.ok((drops.get('no-tunnel') ?? 0) <= 201, `at most the stray allowance was read as strays: ${JSON.stringify([...drops])}`);
  } finally {
    await t.close();
  }
});

test('an oversized datagram closes the sender with 1009; others keep their relay', async () => {
  const t = await startTestServer();
  try {
    const { agent, client, agentKey, clientKey } = await pair(t);
    client.ws.send(encodeRelayFrame(agentKey, Buffer.alloc(MAX_RELAY_PAYLOAD + 1)));
    const closed = await client.waitClosed();
    assert.equal(closed.code, CloseCode.tooBig);
    assert.match(closed.reason, /4096/);
    // The agent is still served.
    agent.send({ type: 'node', node: sampleNode(agentKey) });
    assert.equal(agent.closed, null);
    void clientKey;
  } finally {
    await t.close();
  }
});

test('a receiver that does not read loses datagrams instead of growing server memory', async () => {
  const t = await startTestServer({ limits: { maxRelayBuffered: 64 * 1024, relayBytesPerSec: 0 } });
  try {
    const { agent, client, agentKey } = await pair(t);
    // Stop reading on the agent: the server's send buffer to it fills up.
    (agent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const payload = Buffer.alloc(4000, 1);
    for (let i = 0; i < 3000; i++) client.ws.send(encodeRelayFrame(agentKey, payload));
    const count = async (): Promise<[number, number]> => [
      (await t.server.metrics.relayDatagrams.get()).values[0]?.value ?? 0,
      (await t.server.metrics.relayDrops.get()).values[0]?.value ?? 0,
    ];
    await eventually(async () => {
      const [sent, dropped] = await count();
      return sent + dropped === 3000;
    }, 5000, 'all datagrams handled');
    const drops = (await t.server.metrics.relayDrops.get()).values[0]!;
    assert.equal(drops.labels.reason, 'slow');
    // What was forwarded is bounded by the kernel's socket buffers plus our 64 KiB.
    assert.ok(drops.value >= 500, `dropped ${drops.value}`);
  } finally {
    await t.close();
  }
});

// ---- relay batches (format 2, coordination/relay-batch.ts) ----

function batch(frame: Buffer): RelayBatch {
  const d = decodeRelayBatch(frame);
  if (typeof d === 'string') throw new Error(`not a relay batch: ${d}`);
  return d;
}

test('relay batches: a node that asks gets format 2; a batch crosses whole, stamped with the source key', async () => {
  const t = await startTestServer();
  try {
    const { agent, client, agentKey, clientKey } = await pair(t, { agent: true, client: true });
    const config = client.messages.find((m) => m.type === 'config');
    assert.equal(config?.type === 'config' ? config.relay.frames : undefined, RELAY_BATCH_FORMAT);
    const sent = [Buffer.from('one'), Buffer.alloc(MAX_RELAY_PAYLOAD, 2), Buffer.from('three')];
    client.ws.send(encodeRelayBatch(agentKey, sent));
    const [down] = await agent.waitBinary(1);
    const got = batch(down!);
    assert.equal(got.key.toString('hex'), clientKey);
    assert.deepEqual(got.payloads, sent);
    assert.equal((await t.server.metrics.relayDatagrams.get()).values[0]?.value, 3);
    assert.equal((await t.server.metrics.relayBytes.get()).values[0]?.value, 3 + MAX_RELAY_PAYLOAD + 5);
  } finally {
    await t.close();
  }
});

test('relay batches: between a node that speaks them and one that does not, the server converts', async () => {
  const t = await startTestServer();
  try {
    const { agent, client, agentKey, clientKey } = await pair(t, { client: true });
    const config = agent.messages.find((m) => m.type === 'config');
    assert.equal(config?.type === 'config' ? config.relay.frames : 'no config', undefined, 'an old node is not sent the new format');
    client.ws.send(encodeRelayBatch(agentKey, [Buffer.from('a'), Buffer.from('b')]));
    const down = await agent.waitBinary(2);
    assert.deepEqual(down.map((f) => [relayFrame(f).key, relayFrame(f).payload.toString()]), [[clientKey, 'a'], [clientKey, 'b']]);
    agent.ws.send(encodeRelayFrame(clientKey, Buffer.from('back')));
    const [up] = await client.waitBinary(1);
    assert.equal(batch(up!).key.toString('hex'), agentKey);
    assert.deepEqual(batch(up!).payloads.map(String), ['back']);
  } finally {
    await t.close();
  }
});

test('relay batches: a malformed batch is dropped whole and counted; the sender stays connected', async () => {
  const t = await startTestServer();
  try {
    const { agent, client, agentKey } = await pair(t, { agent: true, client: true });
    const good = encodeRelayBatch(agentKey, [Buffer.from('x'), Buffer.from('y')]);
    client.ws.send(good.subarray(0, good.length - 1)); // the last datagram cut short
    client.ws.send(Buffer.alloc(10)); // shorter than a key
    client.ws.send(encodeRelayBatch(agentKey, [Buffer.from('after')]));
    const [down] = await agent.waitBinary(1);
    assert.deepEqual(batch(down!).payloads.map(String), ['after']);
    const drops = new Map((await t.server.metrics.relayDrops.get()).values.map((v) => [v.labels.reason, v.value]));
    assert.equal(drops.get('malformed'), 2);
    assert.equal(client.closed, null);
    assert.equal(agent.binary.length, 1);
  } finally {
    await t.close();
  }
});

test('relay batches: a batch is charged whole; one over the budget is dropped whole, each datagram counted', async () => {
  const t = await startTestServer({ limits: { relayBytesPerSec: 64 * 1024 } });
  try {
    const { agent, client, agentKey } = await pair(t, { agent: true, client: true });
    const datagrams = Array.from({ length: 15 }, () => Buffer.alloc(MAX_RELAY_PAYLOAD, 3)); // 60 KiB
    for (let i = 0; i < 3; i++) client.ws.send(encodeRelayBatch(agentKey, datagrams));
    await eventually(async () => ((await t.server.metrics.relayDrops.get()).values[0]?.value ?? 0) >= 30);
    const drops = (await t.server.metrics.relayDrops.get()).values;
    assert.deepEqual(drops.map((v) => [v.labels.reason, v.value]), [['rate', 30]]);
    const [down] = await agent.waitBinary(1);
    assert.equal(batch(down!).payloads.length, 15);
    assert.equal((await t.server.metrics.relayDatagrams.get()).values[0]?.value, 15);
  } finally {
    await t.close();
  }
});
