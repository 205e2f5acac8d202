// A node given several servers (replicas): it skips one that refuses connections, and when its
// server shuts down ("server shutting down", close 1001) it is on another one at once, not
// after waiting for the one that left. Two real coordinator servers, in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { CoordinatorClient } from '../../src/node/coordinator-client.js';
import { hashToken } from '../../src/server/tokens.js';
import { eventually, proverFor, randomKey, startTestServer } from '../server/helpers.js';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('a refused server is skipped; a server that shuts down is left for the next one within a second', async () => {
  const a = await startTestServer();
  const b = await startTestServer();
  const secret = await a.token('agent', 'dev-box');
  // The same identity and token in the second server's store, as a shared database would have.
  const id = await b.store.ensureIdentity('agent', 'dev-box', Date.now());
  await b.store.createToken(id.id, hashToken(secret), Date.now(), null);
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const key = randomKey();
  const client = new CoordinatorClient({
    url: [dead, a.server.url, b.server.url],
    token: secret,
    key,
    role: 'agent',
    proveKey: proverFor(key),
    // A slow backoff: moving on must not wait for it.
    backoff: { baseMs: 2000, maxMs: 30_000 },
  });
  try {
    const started = Date.now();
    await client.connect();
    assert.match(client.server ?? '', new RegExp(`:${a.server.port}$`), 'on the first server that answers');
    assert.ok(Date.now() - started < 1500, `${Date.now() - started} ms to skip the refused server`);
    assert.equal(a.server.hub.size, 1);

    const states: string[] = [];
    client.on('state', (s, detail) => states.push(`${s}${detail ? `: ${detail}` : ''}`));
    const closedAt = Date.now();
    await a.server.close(); // graceful: the peers are told "server shutting down"
    await eventually(() => b.server.hub.size === 1, 3000, 'the node on the second server');
    const moved = Date.now() - closedAt;
    assert.ok(moved < 1500, `${moved} ms to move`);
    assert.match(client.server ?? '', new RegExp(`:${b.server.port}$`));
    assert.ok(states.some((s) => /reconnecting: server shutting down/.test(s)), states.join('\n'));
  } finally {
    client.close();
    await b.close();
    await a.store.close().catch(() => undefined);
    rmSync(a.dir, { recursive: true, force: true });
  }
});

test('a host name with two addresses is two servers: connected to one by address, the Host header keeps the name', async () => {
  // Two servers on one port, on two loopback addresses; "replicas.test" names both.
  const embeddedStun = { host: '0.0.0.0', port: 3478 }; // advertised under the Host the peer used
  const a = await startTestServer({ embeddedStun });
  const b = await startTestServer({ embeddedStun, listen: { host: '127.0.0.2', port: a.server.port } });
  const secret = await a.token('agent', 'dev-box');
  const id = await b.store.ensureIdentity('agent', 'dev-box', Date.now());
  await b.store.createToken(id.id, hashToken(secret), Date.now(), null);
  const asked: string[] = [];
  const key = randomKey();
  const client = new CoordinatorClient({
    url: `http://replicas.test:${a.server.port}`,
    token: secret,
    key,
    role: 'agent',
    proveKey: proverFor(key),
    backoff: { baseMs: 2000, maxMs: 30_000 },
    resolve: async (host) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }];
    },
  });
  try {
    const config = await client.connect();
    assert.deepEqual(asked, ['replicas.test']);
    assert.equal(client.server, `http://replicas.test:${a.server.port} (127.0.0.1)`);
    assert.equal(config.stun[0], `replicas.test:3478`, 'the server saw the name in the Host header');
    assert.equal(a.server.hub.size, 1);
    await a.server.close();
    await eventually(() => b.server.hub.size === 1, 3000, 'the node on the second address');
    assert.equal(client.server, `http://replicas.test:${a.server.port} (127.0.0.2)`);
    assert.equal(client.config?.stun[0], 'replicas.test:3478');
  } finally {
    client.close();
    await b.close();
    await a.store.close().catch(() => undefined);
    rmSync(a.dir, { recursive: true, force: true });
  }
});
