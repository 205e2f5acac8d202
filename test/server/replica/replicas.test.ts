// Two replicas in this process on one real PostgreSQL (lab/postgres.ts), peers speaking the raw
// protocol over loopback: what one replica's node does reaches its tunnel peers on the other,
// relay datagrams cross the mesh once, revocations close connections on every replica, and a
// replica that loses the database or leaves hands its peers over as "lost", not "disconnected".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import pg from 'pg';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from '../../../lab/postgres.js';
import { encodeRelayFrame } from '../../../src/coordination/relay-frame.js';
import { decodeRelayBatch, encodeRelayBatch, RELAY_BATCH_FORMAT, RELAY_FRAMES_HEADER } from '../../../src/coordination/relay-batch.js';
import { CloseCode, PROTOCOL_PATH, type ServerMessage } from '../../../src/coordination/protocol.js';
import { startCoordinatorServer, type CoordinatorServer } from '../../../src/server/server.js';
import { PostgresStore } from '../../../src/server/store/postgres.js';
import { generateToken, hashToken } from '../../../src/server/tokens.js';
import { MESH_PATH } from '../../../src/server/replica/mesh-auth.js';
import { requiredByCi } from '../../helpers/required.js';
import { RawPeer, eventually, randomKey, relayFrame, sampleNode } from '../helpers.js';

const why = postgresUnavailable();
if (why && requiredByCi()) throw new Error(`required by TRAVERSE_REQUIRE_LAB=1 but unavailable: ${why}`);

/** Fast heartbeats so that death is noticed in 1.5 s rather than 6 s. */
const LIVENESS = { intervalMs: 500, missedBeats: 3 };

interface Replicas {
  readonly url: string;
  readonly stores: PostgresStore[];
  readonly servers: CoordinatorServer[];
  wsUrl(i: number): string;
  token(kind: 'agent' | 'client', name: string, allow?: string[]): Promise<string>;
  close(): Promise<void>;
}

async function startReplicas(pgServer: TestPostgres, n = 2): Promise<Replicas> {
  const url = await pgServer.createDatabase();
  const stores: PostgresStore[] = [];
  const servers: CoordinatorServer[] = [];
  for (let i = 0; i < n; i++) {
    const store = await PostgresStore.open(url);
    stores.push(store);
    servers.push(
      await startCoordinatorServer({
        listen: { host: '127.0.0.1', port: 0 },
        store,
        stun: [],
        policyPollMs: 250,
        replica: `r${i}`,
        replication: { databaseUrl: url, liveness: LIVENESS },
      }),
    );
  }
  // Every replica sees the others and has its mesh links up.
  await eventually(() => servers.every((s) => s.replica!.peers.size === n - 1 && [...s.replica!.peers.keys()].every((id) => s.replica!.meshReady(id))), 5000, 'replicas to find each other');
  return {
    url,
    stores,
    servers,
    wsUrl: (i) => `ws://127.0.0.1:${servers[i]!.port}${PROTOCOL_PATH}`,
    async token(kind, name, allow) {
      const now = Date.now();
      const identity = await stores[0]!.ensureIdentity(kind, name, now);
      if (allow) await stores[0]!.allow(name, allow, now);
      const secret = generateToken();
      await stores[0]!.createToken(identity.id, hashToken(secret), now, null);
      return secret;
    },
    async close() {
      for (const s of servers) await s.close().catch(() => undefined);
      for (const s of stores) await s.close().catch(() => undefined);
    },
  };
}

const peersUpdate = (kind: string, key: string) => (m: ServerMessage) => m.type === 'peers' && m.updates.some((u) => u.kind === kind && (u.kind === 'node' ? u.node.key === key : u.key === key));

/** Agent on replica 0, client on replica 1, a tunnel between them, both nodes published; both speak relay batches if told to. */
async function agentAndClient(r: Replicas, batches = false) {
  const agentToken = await r.token('agent', 'ws');
  const clientToken = await r.token('client', 'dev', ['ws']);
  const headers: Record<string, string> = batches ? { [RELAY_FRAMES_HEADER]: String(RELAY_BATCH_FORMAT) } : {};
  const agent = await RawPeer.connect(r.wsUrl(0), agentToken, 'agent', headers);
  const client = await RawPeer.connect(r.wsUrl(1), clientToken, 'client', headers);
  const agentKey = randomKey();
  const clientKey = randomKey();
  agent.send({ type: 'node', node: sampleNode(agentKey, ['192.0.2.1:1000']) });
  client.send({ type: 'node', node: sampleNode(clientKey, ['192.0.2.2:2000']) });
  await eventually(() => r.servers[1]!.hub.agent('ws')?.node, 3000, "the agent's node mirrored on replica 1");
  client.send({ type: 'tunnel', agent: 'ws' });
  await client.waitFor((m) => m.type === 'tunnel' && m.status === 'open');
  await client.waitFor(peersUpdate('node', agentKey));
  await agent.waitFor(peersUpdate('node', clientKey));
  return { agent, client, agentKey, clientKey, agentToken, clientToken };
}

describe('replicas on PostgreSQL', why ? { skip: why } : {}, () => {
  let pgServer: TestPostgres;
  before(async () => {
    pgServer = await startTestPostgres();
  });
  after(async () => pgServer?.stop());

  test('relay batches cross replicas too: split into datagrams for the mesh, each delivered as a batch of one', async () => {
    const r = await startReplicas(pgServer);
    try {
      const { agent, client, agentKey, clientKey } = await agentAndClient(r, true);
      client.ws.send(encodeRelayBatch(agentKey, [Buffer.from('one'), Buffer.from('two')]));
      const down = await agent.waitBinary(2);
      assert.deepEqual(
        down.map((f) => {
          const b = decodeRelayBatch(f);
          return typeof b === 'string' ? b : [b.key.toString('hex'), b.payloads.map(String)];
        }),
        [[clientKey, ['one']], [clientKey, ['two']]],
      );
      agent.ws.close();
      client.ws.close();
    } finally {
      await r.close();
    }
  });

  test('node updates, tunnels and relay datagrams cross replicas; the relay crosses the mesh once', async () => {
    const r = await startReplicas(pgServer);
    try {
      const { agent, client, agentKey, clientKey } = await agentAndClient(r);
      // A changed node reaches the tunnel peer on the other replica.
      agent.send({ type: 'node', node: sampleNode(agentKey, ['192.0.2.1:1001']) });
      await client.waitFor((m) => m.type === 'peers' && m.updates.some((u) => u.kind === 'node' && u.node.endpoints[0] === '192.0.2.1:1001'));
      // Relay both ways, through the mesh: the receiver sees the sender's key, payload untouched.
      const before = (await r.servers[1]!.metrics.relayDatagrams.get()).values[0]?.value ?? 0;
      client.ws.send(encodeRelayFrame(agentKey, Buffer.from('to the agent')));
      agent.ws.send(encodeRelayFrame(clientKey, Buffer.from('to the client')));
      const [a] = await agent.waitBinary(1);
      const [c] = await client.waitBinary(1);
      assert.deepEqual(relayFrame(a!), { key: clientKey, payload: Buffer.from('to the agent') });
      assert.deepEqual(relayFrame(c!), { key: agentKey, payload: Buffer.from('to the client') });
      // Replica 1 handled each datagram once: the client's out to the mesh, the agent's in from it.
      assert.equal(((await r.servers[1]!.metrics.relayDatagrams.get()).values[0]?.value ?? 0) - before, 2);
      // A datagram to a node without a tunnel is not carried by the mesh either.
      const stranger = await RawPeer.connect(r.wsUrl(1), await r.token('client', 'other', ['ws']), 'client');
      stranger.send({ type: 'node', node: sampleNode(randomKey()) });
      await eventually(() => r.servers[0]!.hub.nodesOf('client', 'other')[0]?.node);
      stranger.ws.send(encodeRelayFrame(agentKey, Buffer.from('not yours')));
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(agent.binary.length, 1);
      // The client closes its tunnel: the agent on the other replica sees it go.
      client.send({ type: 'untunnel', agent: 'ws' });
      await agent.waitFor(peersUpdate('disconnected', clientKey));
      stranger.ws.close();
      agent.ws.close();
      client.ws.close();
    } finally {
      await r.close();
    }
  });

  test('a revoked token is refused and its connections closed on every replica within 2 s', async () => {
    const r = await startReplicas(pgServer);
    try {
      const { agent, client, clientToken } = await agentAndClient(r);
      const second = await RawPeer.connect(r.wsUrl(0), clientToken, 'client');
      const started = Date.now();
      await r.stores[0]!.revokeIdentity('client', 'dev', Date.now());
      const [a, b] = await Promise.all([client.waitClosed(2000), second.waitClosed(2000)]);
      assert.ok(Date.now() - started < 2000);
      assert.equal(a.code, CloseCode.revoked);
      assert.equal(b.code, CloseCode.revoked);
      await assert.rejects(RawPeer.open(r.wsUrl(0), clientToken, 'client'), /HTTP 401/);
      await assert.rejects(RawPeer.open(r.wsUrl(1), clientToken, 'client'), /HTTP 401/);
      agent.ws.close();
    } finally {
      await r.close();
    }
  });

  test('a replica that loses the database closes its peers; the others mark them lost, not disconnected', async () => {
    const r = await startReplicas(pgServer);
    try {
      const { agent, client, agentKey, agentToken } = await agentAndClient(r);
      const id0 = r.servers[0]!.replica!.id!;
      // Cut replica 0 off: the database ends its connections (as a failover or a network cut would).
      const admin = new pg.Client({ connectionString: r.url });
      await admin.connect();
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`traverse-replica-${id0}`]);
      await admin.end();
      const closed = await agent.waitClosed(3000);
      assert.equal(closed.code, CloseCode.goingAway);
      assert.match(closed.reason, /lost its database/);
      // Replica 1 hears nothing more from the old replica 0 and, 3 beats later, marks its nodes lost.
      await client.waitFor(peersUpdate('lost', agentKey), 5000);
      assert.equal(client.messages.some(peersUpdate('disconnected', agentKey)), false);
      // The agent reconnects to replica 1 and the client sees it back.
      const back = await RawPeer.connect(r.wsUrl(1), agentToken, 'agent');
      const lostAt = client.messages.length;
      back.send({ type: 'node', node: sampleNode(agentKey, ['192.0.2.1:1002']) });
      await client.waitFor((m) => client.messages.indexOf(m) >= lostAt && peersUpdate('node', agentKey)(m));
      // Replica 0 comes back under a new id and mirrors what replica 1 holds.
      await eventually(() => r.servers[0]!.replica!.serving && r.servers[0]!.replica!.id !== id0, 5000, 'replica 0 to rejoin');
      await eventually(() => r.servers[0]!.hub.agent('ws')?.node?.endpoints[0] === '192.0.2.1:1002', 5000, 'replica 0 to mirror the agent again');
      back.ws.close();
      client.ws.close();
    } finally {
      await r.close();
    }
  });

  test('a clean shutdown hands the peers over as lost at once, without waiting for heartbeats', async () => {
    const r = await startReplicas(pgServer);
    try {
      const { agent, client, agentKey } = await agentAndClient(r);
      const started = Date.now();
      await r.servers[0]!.close();
      assert.equal((await agent.waitClosed()).code, CloseCode.goingAway);
      await client.waitFor(peersUpdate('lost', agentKey), 1000);
      assert.ok(Date.now() - started < 1000 + LIVENESS.intervalMs);
      assert.equal(client.messages.some(peersUpdate('disconnected', agentKey)), false);
      client.ws.close();
    } finally {
      await r.close();
    }
  });

  test('the mesh refuses a replica without the mesh key, and a peer token does not open it', async () => {
    const r = await startReplicas(pgServer);
    try {
      const token = await r.token('client', 'dev');
      const ws = new WebSocket(`ws://127.0.0.1:${r.servers[0]!.port}${MESH_PATH}`, { headers: { authorization: `Bearer ${token}` } });
      const hello = await new Promise<{ id: string; nonce: string }>((resolve) => ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as { id: string; nonce: string })));
      ws.send(JSON.stringify({ t: 'auth', id: 'ab'.repeat(8), nonce: 'cd'.repeat(32), mac: 'ef'.repeat(32) }));
      const code = await new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)));
      assert.equal(code, 4401);
      assert.match(hello.id, /^[0-9a-f]{16}$/);
    } finally {
      await r.close();
    }
  });
});
