// IPv6 end to end on loopback: the coordination server listening on [::1] and reached by its
// [::1] URL, the embedded STUN server on [::1], and two nodes that offer only ::1 going direct
// over IPv6 with a stream on the path. Nothing leaves the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerNode } from '../../src/node/peer-node.js';
import { agentService } from '../../src/node/agent.js';
import { speedtest, waitForDirect } from '../../src/node/speedtest.js';
import { startEmbeddedStun } from '../../src/server/stun-embed.js';
import { runLocalNetcheck } from '../../src/node/netcheck.js';
import { eventually, startTestServer, httpGet } from '../server/helpers.js';
import { loopbackNode } from './loopback-node.js';

test('over IPv6 loopback: coordinator at [::1], embedded STUN on [::1], a direct IPv6 path carrying a stream', async () => {
  const stun = await startEmbeddedStun({ listen: { address: '::1', port: 0 } });
  const t = await startTestServer({ listen: { host: '::1', port: 0 }, stun: [`[::1]:${stun.address.port}`] });
  const nodes: PeerNode[] = [];
  try {
    assert.match(t.server.url, /^http:\/\/\[::1\]:\d+$/);
    const health = await httpGet(`${t.server.url}/healthz`);
    assert.equal(health.status, 200);
    const v6only = { localAddresses: () => ['::1'], stun: { disabled: false, servers: [`[::1]:${stun.address.port}`] } };
    const agent = await loopbackNode(t, await t.token('agent', 'ws1'), 'agent', { ...v6only, acceptStream: agentService(['127.0.0.1:*']).acceptStream });
    nodes.push(agent);
    const client = await loopbackNode(t, await t.token('client', 'laptop', { allow: ['ws1'] }), 'client', v6only);
    nodes.push(client);
    // Our own IPv6 address as the STUN server saw it: the candidate and the netcheck agree.
    const port = client.magicsock.port;
    assert.deepEqual(client.magicsock.endpoints, [`[::1]:${port}`]);
    const summary = await eventually(async () => client.netcheck, 5000);
    assert.equal(summary.globalV6, `[::1]:${port}`);
    assert.equal(summary.globalV4, null);

    const key = (await client.openTunnel('ws1', 5000)).key;
    await waitForDirect(client, key, 5000);
    assert.match(JSON.stringify(client.magicsock.pathOf(key)), /"endpoint":"\[::1\]:\d+"/);
    const [r] = await speedtest(client, { peerKey: key, directions: ['download'], seconds: 0.5, waitForDirectMs: 0 });
    assert.equal(r?.path, 'direct');
    assert.match(r?.endpoint ?? '', /^\[::1\]:\d+$/);
    assert.ok((r?.bytes ?? 0) > 0);
  } finally {
    for (const n of nodes) n.close();
    await t.close();
    await stun.close();
  }
});

test('netcheck over IPv6: reachability, the global IPv6 address and the latency of each IPv6 server', async () => {
  const a = await startEmbeddedStun({ listen: { address: '::1', port: 0 } });
  const b = await startEmbeddedStun({ listen: { address: '127.0.0.1', port: 0 } });
  try {
    const r = await runLocalNetcheck(
      [
        { address: '::1', port: a.address.port, family: 6 },
        { address: '127.0.0.1', port: b.address.port, family: 4 },
      ],
      { timeoutMs: 1500 },
    );
    assert.equal(r.ipv6, true);
    assert.equal(r.ipv4, true);
    assert.match(r.globalV6 ?? '', /^\[::1\]:\d+$/);
    const v6 = r.servers.find((s) => s.address === `[::1]:${a.address.port}`);
    assert.ok(v6 && v6.latencyMs !== null && v6.latencyMs >= 0, JSON.stringify(r.servers));
    assert.equal(v6.mapped, r.globalV6);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a dual-stack coordinator ([::]) vouches for an IPv4 peer by its IPv4 address, not ::ffff:', async () => {
  const t = await startTestServer({ listen: { host: '::', port: 0 } });
  const nodes: PeerNode[] = [];
  try {
    const server = `http://127.0.0.1:${t.server.port}`;
    nodes.push(await loopbackNode(t, await t.token('agent', 'ws1'), 'agent', { server }));
    const client = await loopbackNode(t, await t.token('client', 'laptop', { allow: ['ws1'] }), 'client', { server });
    nodes.push(client);
    const key = (await client.openTunnel('ws1', 5000)).key;
    assert.equal(client.coordinator.peers.get(key)?.seenFrom, '127.0.0.1');
  } finally {
    for (const n of nodes) n.close();
    await t.close();
  }
});
