// A node given several servers (replicas): it skips one that refuses connections, and when its
// server shuts down ("server shutting down", close 1001) it is on another one at once, not
// after waiting for the one that left. Two real coordinator servers, in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { CoordinatorClient, type CoordinatorClientOptions } from '../../src/node/coordinator-client.js';
import { hashToken } from '../../src/server/tokens.js';
import { eventually, proverFor, randomKey, startTestServer, type ServerOverrides, type TestServer } from '../server/helpers.js';

/** Two servers knowing one agent token, as two replicas on one database would. */
async function twoServers(a: ServerOverrides = {}, b: (first: TestServer) => ServerOverrides = () => ({})): Promise<[TestServer, TestServer, string]> {
  const first = await startTestServer(a);
  const second = await startTestServer(b(first));
  const secret = await first.token('agent', 'dev-box');
  const id = await second.store.ensureIdentity('agent', 'dev-box', Date.now());
  await second.store.createToken(id.id, hashToken(secret), Date.now(), null);
  return [first, second, secret];
}

/** An agent's coordinator client with a slow backoff: moving on must not wait for it. */
function agentClient(url: CoordinatorClientOptions['url'], token: string, extra: Partial<CoordinatorClientOptions> = {}): CoordinatorClient {
  const key = randomKey();
  return new CoordinatorClient({ url, token, key, role: 'agent', proveKey: proverFor(key), backoff: { baseMs: 2000, maxMs: 30_000 }, ...extra });
}

/** The first server, already closed by the test: its store and folder. */
async function removeClosed(t: TestServer): Promise<void> {
  await t.store.close().catch(() => undefined);
  rmSync(t.dir, { recursive: true, force: true });
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('a refused server is skipped; a server that shuts down is left for the next one within a second', async () => {
  const [a, b, secret] = await twoServers();
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const client = agentClient([dead, a.server.url, b.server.url], secret);
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
    await removeClosed(a);
  }
});

test('a host name with two addresses is two servers: connected to one by address, the Host header keeps the name', async () => {
  // Two servers on one port, on two loopback addresses; "replicas.test" names both.
  const embeddedStun = { host: '0.0.0.0', port: 3478 }; // advertised under the Host the peer used
  const [a, b, secret] = await twoServers({ embeddedStun }, (first) => ({ embeddedStun, listen: { host: '127.0.0.2', port: first.server.port } }));
  const asked: string[] = [];
  const client = agentClient(`http://replicas.test:${a.server.port}`, secret, {
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
    await removeClosed(a);
  }
});

test('a server that accepts the connection and never answers is left after the handshake timeout', async () => {
  // A black hole: TCP is accepted, the upgrade request is read and never answered.
  const sockets = new Set<Socket>();
  const hole = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
  const b = await startTestServer();
  const secret = await b.token('agent', 'dev-box');
  const client = agentClient([`http://127.0.0.1:${(hole.address() as { port: number }).port}`, b.server.url], secret, { handshakeTimeoutMs: 300 });
  try {
    const started = Date.now();
    await client.connect();
    assert.equal(client.server, b.server.url);
    assert.ok(sockets.size >= 1, 'the black hole was tried first');
    assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
  } finally {
    client.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hole.close(() => r()));
    await b.close();
  }
});
