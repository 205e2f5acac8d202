// The node's one dual-stack socket on loopback: one engine reaches an IPv6-only peer over ::1
// and an IPv4-only peer over 127.0.0.1 from the same socket and port, and with a peer that
// answers on both families it settles on one path and stays there. Candidates are loopback
// only, so nothing leaves the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MagicSock } from '../../src/magicsock/magicsock.js';
import { NodeKey } from '../../src/identity/node-key.js';
import type { Path } from '../../src/net/path.js';
import { MemoryRelay } from '../helpers/memory-relay.js';

/** An engine offering `addresses`; on a socket bound to `bindAddress`, or by default dual-stack on [::]. */
async function engine(relay: MemoryRelay, addresses: string[], bindAddress?: string): Promise<{ key: string; ms: MagicSock }> {
  const key = NodeKey.generate();
  const ms = await MagicSock.open({ key, relay: relay.transportFor(key.publicHex), localAddresses: () => addresses, ...(bindAddress ? { bindAddress } : {}) });
  relay.register(key.publicHex, ms);
  await ms.refreshEndpoints();
  return { key: key.publicHex, ms };
}

function direct(ms: MagicSock, peer: string, timeoutMs = 4000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no direct path (now ${JSON.stringify(ms.pathOf(peer))})`)), timeoutMs);
    const check = (k: string, p: Path): void => {
      if (k !== peer || p.kind !== 'direct') return;
      clearTimeout(timer);
      ms.off('path', check);
      resolve(p.endpoint);
    };
    ms.on('path', check);
    check(peer, ms.pathOf(peer));
  });
}

test('one dual-stack socket: an IPv6-only peer over ::1 and an IPv4-only peer over 127.0.0.1; a dual-stack peer does not flap', async () => {
  const relay = new MemoryRelay();
  const a = await engine(relay, ['127.0.0.1', '::1']);
  // Single-family peers: sockets that can only speak IPv6, or only IPv4.
  const v6 = await engine(relay, ['127.0.0.1', '::1'], '::1');
  const v4 = await engine(relay, ['127.0.0.1', '::1'], '127.0.0.1');
  const both = await engine(relay, ['127.0.0.1', '::1']);
  const all = [a, v6, v4, both];
  try {
    assert.deepEqual(a.ms.families, [4, 6]);
    assert.deepEqual(v6.ms.families, [6]);
    assert.deepEqual(v6.ms.endpoints, [`[::1]:${v6.ms.port}`], 'a socket offers only the addresses of its families');
    assert.deepEqual(v4.ms.endpoints, [`127.0.0.1:${v4.ms.port}`]);
    assert.deepEqual(a.ms.endpoints, [`127.0.0.1:${a.ms.port}`, `[::1]:${a.ms.port}`]);
    const link = (x: typeof a, y: typeof a): void => {
      x.ms.upsertPeer(y.key, y.ms.endpoints);
      y.ms.upsertPeer(x.key, x.ms.endpoints);
    };
    // The IPv6-only peer's endpoint as another implementation might spell it: still the same one.
    a.ms.upsertPeer(v6.key, [`[0:0:0:0:0:0:0:1]:${v6.ms.port}`]);
    v6.ms.upsertPeer(a.key, a.ms.endpoints);
    link(a, v4);
    link(a, both);
    assert.equal(await direct(a.ms, v6.key), `[::1]:${v6.ms.port}`);
    assert.equal(await direct(a.ms, v4.key), `127.0.0.1:${v4.ms.port}`);
    assert.equal(await direct(v6.ms, a.key), `[::1]:${a.ms.port}`);
    assert.equal(await direct(v4.ms, a.key), `127.0.0.1:${a.ms.port}`);

    const first = await direct(a.ms, both.key);
    const changes: Path[] = [];
    a.ms.on('path', (k, p) => {
      if (k === both.key) changes.push(p);
    });
    // The burst (to 3.2 s) and heartbeats: both families answer, with near-equal round trips.
    await new Promise((r) => setTimeout(r, 3500));
    assert.deepEqual(changes, [], `stayed on ${first}`);
    const pong = await a.ms.ping(both.key, 1000);
    assert.deepEqual(pong?.path, { kind: 'direct', endpoint: first });
  } finally {
    for (const e of all) e.ms.close();
  }
});
