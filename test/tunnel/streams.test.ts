// Encrypted streams between two real MagicSock engines on 127.0.0.1 with an in-memory relay: a
// stream opened on the relay continues, byte for byte, when the path goes direct and when the
// direct path is lost again. Candidates are 127.0.0.1 only, so nothing leaves the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MagicSock } from '../../src/magicsock/magicsock.js';
import { MemoryRelay, openLoopbackMagicSock } from '../helpers/memory-relay.js';
import { startEcho } from '../helpers/echo.js';
import { readAll } from '../helpers/read-all.js';
import { NodeKey } from '../../src/identity/node-key.js';
import { StreamManager, type AcceptDecision } from '../../src/tunnel/streams.js';
import { decodeControl, encodeControl, type StreamControl } from '../../src/tunnel/control.js';
import { respond, StreamInitiator } from '../../src/tunnel/noise.js';
import { AllowList } from '../../src/tunnel/allow-list.js';
import { serveRequest } from '../../src/tunnel/services.js';
import type { StreamRequest } from '../../src/tunnel/request.js';

interface Node {
  readonly key: NodeKey;
  readonly ms: MagicSock;
  readonly streams: StreamManager;
}

async function node(
  relay: MemoryRelay,
  opts: { accept?: (peer: string, r: StreamRequest) => Promise<AcceptDecision>; directAllowed?: boolean; tcpLane?: boolean } = {},
): Promise<Node> {
  const { key, ms } = await openLoopbackMagicSock(relay, opts.directAllowed ?? false);
  const streams = new StreamManager({ magicsock: ms, key, accept: opts.accept ?? null, mayOpen: () => true, tcpLane: opts.tcpLane ?? true });
  return { key, ms, streams };
}

function connect(a: Node, b: Node): void {
  a.ms.upsertPeer(b.key.publicHex, [`127.0.0.1:${b.ms.port}`]);
  b.ms.upsertPeer(a.key.publicHex, [`127.0.0.1:${a.ms.port}`]);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Closes the nodes' streams first, then their sockets, as a test's clean-up. */
function closeNodes(...nodes: Node[]): void {
  for (const n of nodes) n.streams.close();
  for (const n of nodes) n.ms.close();
}

/** A download of `payload` served by the agent for every stream. */
function serving(payload: Buffer): (peer: string, r: StreamRequest) => Promise<AcceptDecision> {
  return async () => ({
    ok: true,
    take: (s: Duplex) => {
      s.resume();
      let o = 0;
      const pump = (): void => {
        while (o < payload.length) {
          const c = payload.subarray(o, o + 65536);
          o += c.length;
          if (!s.write(c)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    },
  });
}

test('a TCP stream through the relay echoes, half-closes, and shows only ciphertext on the relay', async () => {
  const relay = new MemoryRelay();
  relay.keepFrames = true;
  const allow = new AllowList();
  const agent = await node(relay, { accept: (_p, r) => serveRequest(r, allow) });
  const client = await node(relay);
  connect(client, agent);
  const echo = await startEcho();
  try {
    const s = await client.streams.open(agent.key.publicHex, { kind: 'tcp', target: echo.target });
    const marker = Buffer.from('TRAVERSE-PLAINTEXT-MARKER-'.repeat(40));
    const got = readAll(s);
    s.end(marker);
    assert.equal((await got).toString(), marker.toString());
    const all = Buffer.concat(relay.frames);
    assert.ok(relay.frames.length > 0);
    assert.ok(!all.includes(Buffer.from('TRAVERSE-PLAINTEXT-MARKER')), 'the relay saw plaintext');
    assert.ok(!all.includes(Buffer.from(echo.target)), 'the relay saw the target');
  } finally {
    echo.server.close();
    closeNodes(client, agent);
  }
});

test('refusals carry the reason: a target outside the allow-list, a closed port', async () => {
  const relay = new MemoryRelay();
  const allow = new AllowList(['127.0.0.1:1-1000']);
  const agent = await node(relay, { accept: (_p, r) => serveRequest(r, allow) });
  const client = await node(relay);
  connect(client, agent);
  try {
    await assert.rejects(client.streams.open(agent.key.publicHex, { kind: 'tcp', target: '127.0.0.1:2000' }), /not allowed by the agent/);
    await assert.rejects(client.streams.open(agent.key.publicHex, { kind: 'tcp', target: '127.0.0.1:9' }), /cannot connect to 127\.0\.0\.1:9.*ECONNREFUSED/);
    const none = await node(relay); // accepts nothing
    connect(client, none);
    await assert.rejects(client.streams.open(none.key.publicHex, { kind: 'tcp', target: '127.0.0.1:22' }), /may not open streams/);
    closeNodes(none);
  } finally {
    closeNodes(client, agent);
  }
});

test('a malformed control payload is dropped unanswered; a carrier for an unknown stream is refused', async () => {
  const relay = new MemoryRelay();
  const agent = await node(relay, { accept: serving(Buffer.from('ok')) });
  const client = await node(relay);
  connect(client, agent);
  try {
    const answers: string[] = [];
    client.ms.on('control', (_peer, payload) => answers.push(decodeControl(payload)?.type ?? 'malformed'));
    const path = client.ms.pathOf(agent.key.publicHex);
    const open = encodeControl({ type: 'stream-open', sid: 1n, carrier: 1, handshake: new Uint8Array([1]) });
    for (const garbage of [new Uint8Array([0xff]), open.subarray(0, 12), Buffer.concat([Buffer.from([9]), open.subarray(1)])]) {
      assert.ok(client.ms.sendControl(agent.key.publicHex, path, garbage));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(answers, []);
    client.ms.sendControl(agent.key.publicHex, path, encodeControl({ type: 'carrier', sid: 2n, carrier: 3 }));
    while (answers.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(answers, ['stream-refuse']);
    // The agent still opens streams.
    const s = await client.streams.open(agent.key.publicHex, { kind: 'speedtest', direction: 'download', seconds: 1 });
    assert.equal((await readAll(s)).toString(), 'ok');
  } finally {
    closeNodes(client, agent);
  }
});

test('a client from before frame version 2 is refused with a message naming both versions, not answered in frames it cannot read', async () => {
  const relay = new MemoryRelay();
  const agent = await node(relay, { accept: serving(Buffer.from('ok')) });
  const client = await node(relay);
  connect(client, agent);
  try {
    const answers: StreamControl[] = [];
    client.ms.on('control', (_peer, payload) => {
      const m = decodeControl(payload);
      if (m) answers.push(m);
    });
    // What such a client sends: a valid handshake whose request names no frame version.
    const old = new StreamInitiator(client.key, agent.key.publicKey, Buffer.from(JSON.stringify({ kind: 'speedtest', direction: 'download', seconds: 1 })));
    const path = client.ms.pathOf(agent.key.publicHex);
    client.ms.sendControl(agent.key.publicHex, path, encodeControl({ type: 'stream-open', sid: 7n, carrier: 9, handshake: old.message }));
    while (answers.length === 0) await new Promise((r) => setTimeout(r, 5));
    const answer = answers[0]!;
    assert.equal(answer.type, 'stream-refuse');
    assert.equal(answer.type === 'stream-refuse' && answer.reason, 'the agent speaks stream protocol v2, the client v1: run the same traverse version on both ends (update the client)');
  } finally {
    closeNodes(client, agent);
  }
});

test('a client refuses an agent from before version 2, which accepts its request without naming a version', async () => {
  const relay = new MemoryRelay();
  const client = await node(relay);
  // Such an agent: its answer is an authentic handshake whose response names no frame version.
  const { key, ms } = await openLoopbackMagicSock(relay, false);
  connect(client, { key, ms } as Node);
  ms.on('control', (peer, payload, path) => {
    const m = decodeControl(payload);
    if (m?.type !== 'stream-open') return;
    const { message } = respond(key, m.handshake).reply(Buffer.from(JSON.stringify({ ok: true })));
    ms.sendControl(peer, path, encodeControl({ type: 'stream-accept', sid: m.sid, carrier: 1, handshake: message }));
  });
  try {
    await assert.rejects(
      client.streams.open(key.publicHex, { kind: 'tcp', target: '127.0.0.1:22' }),
      (e: Error) => e.message === 'the agent speaks stream protocol v1, the client v2: run the same traverse version on both ends (update the agent)',
    );
  } finally {
    client.streams.close();
    client.ms.close();
    ms.close();
  }
});

test('a 64 MB download keeps every byte while the path goes relay -> direct -> relay', async () => {
  const relay = new MemoryRelay();
  const payload = randomBytes(64 << 20);
  const agent = await node(relay, { directAllowed: true, accept: serving(payload) });
  const client = await node(relay, { directAllowed: true });
  // Start relayed: the peers know no endpoints yet.
  agent.ms.upsertPeer(client.key.publicHex, []);
  client.ms.upsertPeer(agent.key.publicHex, []);
  try {
    const s = await client.streams.open(agent.key.publicHex, { kind: 'speedtest', direction: 'download', seconds: 1 });
    assert.equal(client.ms.pathOf(agent.key.publicHex).kind, 'relay');
    // UDX carrier moves; a TCP lane may open while the path is direct (the next test covers it).
    const moves: string[] = [];
    client.streams.on('carrier', (_k, _sid, p, kind) => kind === 'udx' && moves.push(p.kind));
    const parts: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        parts.push(d);
        got += d.length;
      });
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    // A quarter in: the endpoints appear and the path goes direct.
    while (got < payload.length / 4) await new Promise((r) => setTimeout(r, 5));
    connect(client, agent);
    while (client.ms.pathOf(agent.key.publicHex).kind !== 'direct') await new Promise((r) => setTimeout(r, 5));
    // Later, direct paths are switched off (as a server --block-direct would): back to the relay.
    while (got < (payload.length * 3) / 4 && moves.length < 1) await new Promise((r) => setTimeout(r, 5));
    client.ms.setDirectAllowed(false);
    agent.ms.setDirectAllowed(false);
    await done;
    s.end();
    const all = Buffer.concat(parts);
    assert.equal(all.length, payload.length);
    assert.equal(sha(all), sha(payload));
    assert.deepEqual(moves, ['direct', 'relay']);
  } finally {
    closeNodes(client, agent);
  }
});

/** The client's TCP lane sockets (the test kills them to make the lane die under a transfer). */
function lanesOf(n: Node): Socket[] {
  const sessions = (n.streams as unknown as { sessions: Map<string, { lane: Socket | null }> }).sessions;
  return [...sessions.values()].flatMap((r) => (r.lane ? [r.lane] : []));
}

test('on a direct path a stream moves onto a TCP lane, and back onto UDX when the lane dies, keeping every byte', async () => {
  const relay = new MemoryRelay();
  const payload = randomBytes(64 << 20);
  const agent = await node(relay, { directAllowed: true, accept: serving(payload) });
  const client = await node(relay, { directAllowed: true });
  connect(client, agent);
  try {
    while (client.ms.pathOf(agent.key.publicHex).kind !== 'direct') await new Promise((r) => setTimeout(r, 5));
    const s = await client.streams.open(agent.key.publicHex, { kind: 'speedtest', direction: 'download', seconds: 1 });
    const kinds: string[] = [];
    client.streams.on('carrier', (_k, _sid, _p, kind) => kinds.push(kind));
    const parts: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        parts.push(d);
        got += d.length;
      });
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    while (client.streams.carrierKind(s) !== 'tcp') await new Promise((r) => setTimeout(r, 5));
    assert.equal(agent.streams.count(), 1);
    // Halfway, the lane dies (as a NAT that drops the TCP mapping would make it): back to UDX.
    while (got < payload.length / 2) await new Promise((r) => setTimeout(r, 5));
    const lanes = lanesOf(client);
    assert.equal(lanes.length, 1);
    lanes[0]!.resetAndDestroy();
    await done;
    s.end();
    const all = Buffer.concat(parts);
    assert.equal(all.length, payload.length);
    assert.equal(sha(all), sha(payload));
    assert.deepEqual(kinds.slice(0, 2), ['tcp', 'udx']);
    assert.equal(client.streams.carrierKind(s) ?? 'udx', 'udx');
  } finally {
    closeNodes(client, agent);
  }
});

test('with TCP lanes off (--no-tcp-lane) a direct stream stays on UDX', async () => {
  const relay = new MemoryRelay();
  const payload = randomBytes(4 << 20);
  const agent = await node(relay, { directAllowed: true, accept: serving(payload), tcpLane: false });
  const client = await node(relay, { directAllowed: true });
  connect(client, agent);
  try {
    while (client.ms.pathOf(agent.key.publicHex).kind !== 'direct') await new Promise((r) => setTimeout(r, 5));
    const s = await client.streams.open(agent.key.publicHex, { kind: 'speedtest', direction: 'download', seconds: 1 });
    const all = await readAll(s);
    s.end();
    assert.equal(sha(all), sha(payload));
    assert.equal(lanesOf(client).length, 0, 'the agent did not answer the offer');
  } finally {
    closeNodes(client, agent);
  }
});

test('an agent answers at most 16 lane offers in flight per client, however many streams and tokens it sends', async () => {
  const relay = new MemoryRelay();
  const agent = await node(relay, { directAllowed: true, accept: serving(Buffer.alloc(0)) });
  // The client makes no offers of its own: the test sends them, as a misbehaving client would.
  const client = await node(relay, { directAllowed: true, tcpLane: false });
  connect(client, agent);
  try {
    while (client.ms.pathOf(agent.key.publicHex).kind !== 'direct') await new Promise((r) => setTimeout(r, 5));
    const sids: bigint[] = [];
    const acks = new Set<string>();
    client.ms.on('control', (_peer, payload) => {
      const m = decodeControl(payload);
      if (m?.type === 'stream-accept') sids.push(m.sid);
      if (m?.type === 'tcp-lane-ack') acks.add(Buffer.from(m.token).toString('hex'));
    });
    const streams = await Promise.all([0, 1].map(() => client.streams.open(agent.key.publicHex, { kind: 'speedtest', direction: 'upload', seconds: 1 })));
    for (const s of streams) s.resume();
    const path = client.ms.pathOf(agent.key.publicHex);
    // 2 streams x 16 offers: within the per-stream bound, twice the per-peer one. Their ports
    // lead nowhere, so every attempt stays open for its 3 s.
    for (const sid of new Set(sids)) {
      for (let i = 0; i < 16; i++) client.ms.sendControl(agent.key.publicHex, path, encodeControl({ type: 'tcp-lane', sid, port: 9, token: randomBytes(16) }));
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(acks.size, 16);
    for (const s of streams) s.destroy();
  } finally {
    closeNodes(client, agent);
  }
});
