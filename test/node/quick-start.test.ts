// quickStart (what `traverse proxy` runs with): the node is published and its first stream
// carries bytes while its STUN server has not answered; without it, start() waits for STUN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { agentService } from '../../src/node/agent.js';
import { proxyStream } from '../../src/node/proxy.js';
import { startTestServer } from '../server/helpers.js';
import { loopbackNode } from './loopback-node.js';
import { NodeKey } from '../../src/identity/node-key.js';

/** The time learnReflexive waits for STUN answers (magicsock.refreshEndpoints' default). */
const STUN_WAIT_MS = 1500;

test('quickStart: start() does not wait for a silent STUN server, and the first stream carries bytes at once', async () => {
  const t = await startTestServer();
  const silent = createSocket('udp4');
  let stunRequests = 0;
  silent.on('message', () => stunRequests++); // never answered
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  const stun = { disabled: false, servers: [`127.0.0.1:${(silent.address() as AddressInfo).port}`] };
  const echo = createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const nodes: { close(): void }[] = [];
  try {
    const agentToken = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    nodes.push(await loopbackNode(t, agentToken, 'agent', { acceptStream: agentService(['127.0.0.1:*']).acceptStream }));

    // Without quickStart the start waits out the STUN server (the reference this test measures against).
    let began = performance.now();
    const slow = await loopbackNode(t, clientToken, 'client', { stun });
    nodes.push(slow);
    const slowMs = performance.now() - began;
    assert.ok(slowMs >= STUN_WAIT_MS - 100, `a normal start waits for STUN (${slowMs.toFixed(0)} ms)`);

    began = performance.now();
    const client = await loopbackNode(t, clientToken, 'client', { stun, quickStart: true });
    nodes.push(client);
    const agentKey = (await client.openTunnel('ws1', 5000)).key;
    const input = new PassThrough();
    const output = new PassThrough();
    const done = proxyStream(client, { peerKey: agentKey, target: `127.0.0.1:${(echo.address() as AddressInfo).port}`, input, output });
    input.write('hello');
    const [reply] = (await once(output, 'data')) as [Buffer];
    const quickMs = performance.now() - began;
    assert.equal(reply.toString(), 'hello');
    input.end();
    await done;
    assert.ok(stunRequests > 0, 'the quick node asked the STUN server all the same');
    // Start, tunnel and an echoed byte, all before the STUN wait that a normal start sits out.
    assert.ok(quickMs < STUN_WAIT_MS, `quick start to the first echoed byte in ${quickMs.toFixed(0)} ms (normal start alone: ${slowMs.toFixed(0)} ms)`);
    assert.equal(client.netcheck, undefined, 'the netcheck waits until after the set-up');
  } finally {
    for (const n of nodes) n.close();
    echo.close();
    silent.close();
    await t.close();
  }
});

test('tunnelTo: the tunnel asked for as the node joins is the one openTunnel gives; a refusal or a close ends it at once', async () => {
  const t = await startTestServer();
  const nodes: { close(): void }[] = [];
  try {
    const agentToken = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const agentKey = NodeKey.generate();
    nodes.push(await loopbackNode(t, agentToken, 'agent', { key: agentKey, acceptStream: agentService(['127.0.0.1:*']).acceptStream }));

    const client = await loopbackNode(t, clientToken, 'client', { quickStart: true, tunnelTo: 'ws1' });
    nodes.push(client);
    // The request went out as the node joined: openTunnel sends none of its own.
    const asked: string[] = [];
    const request = client.coordinator.requestTunnel.bind(client.coordinator);
    client.coordinator.requestTunnel = (agent: string) => {
      asked.push(agent);
      request(agent);
    };
    assert.equal((await client.openTunnel('ws1', 5000)).key, agentKey.publicHex);
    assert.deepEqual(asked, []);

    // Not allowed: the server's refusal, which may arrive before openTunnel is called, is not lost.
    let began = performance.now();
    const refused = await loopbackNode(t, clientToken, 'client', { quickStart: true, tunnelTo: 'ws9' });
    nodes.push(refused);
    await new Promise((r) => setTimeout(r, 200)); // the refusal is in by now
    const askedAgain: string[] = [];
    refused.coordinator.requestTunnel = (agent: string) => void askedAgain.push(agent); // not sent: the kept refusal must answer
    await assert.rejects(refused.openTunnel('ws9', 10_000), /refused a tunnel to "ws9": not allowed/);
    assert.ok(performance.now() - began < 5000, 'refused at once, not after the timeout');
    assert.deepEqual(askedAgain, [], 'the refusal that came as the node joined answered openTunnel');

    // Closed while waiting for an agent that is away: the wait ends with the node.
    const waiting = await loopbackNode(t, await t.token('client', 'lap2', { allow: ['ws2'] }), 'client', { quickStart: true, tunnelTo: 'ws2' });
    began = performance.now();
    const wait = waiting.openTunnel('ws2', 10_000);
    waiting.close();
    await assert.rejects(wait, /closed/);
    assert.ok(performance.now() - began < 1000);
  } finally {
    for (const n of nodes) n.close();
    await t.close();
  }
});
