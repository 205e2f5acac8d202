// Two hubs joined in memory the way replicas are joined through PostgreSQL and the mesh: each
// hub's changes become events applied to the other's mirror, relay frames for a mirrored node go
// to the other hub's handleMeshFrame. No database, no sockets, no clock: the routing rules alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, type ServerConfig, type ServerMessage } from '../../../src/coordination/protocol.js';
import { decodeRelayFrame, encodeRelayFrame } from '../../../src/coordination/relay-frame.js';
import { DEFAULT_LIMITS, Hub, Peer, type PeerLink } from '../../../src/server/hub.js';
import { Mirror, eventOf, snapshotOf } from '../../../src/server/replica/mirror.js';
import type { ReplicaEvent } from '../../../src/server/replica/events.js';
import { randomKey, sampleNode } from '../helpers.js';

class FakeLink implements PeerLink {
  texts: ServerMessage[] = [];
  frames: Buffer[] = [];
  closed: [number, string] | null = null;
  sendText(t: string): void {
    this.texts.push(JSON.parse(t) as ServerMessage);
  }
  sendBinary(f: Buffer): void {
    this.frames.push(Buffer.from(f));
  }
  bufferedAmount(): number {
    return 0;
  }
  close(code: number, reason: string): void {
    this.closed = [code, reason];
  }
}

const config = (kind: 'agent' | 'client', name: string): ServerConfig => ({
  type: 'config', version: 1, identity: { name, kind }, stun: [], relay: { enabled: true, maxPayload: 4096 }, blockDirect: false, pingIntervalMs: 1000,
  challenge: { key: '00'.repeat(32), nonce: '00'.repeat(32) },
});

interface Side {
  readonly id: string;
  readonly hub: Hub;
  mirror: Mirror;
  /** Events this replica published and the other has not applied yet. */
  readonly outbox: ReplicaEvent[];
}

/** Two replicas "r1..." and "r2...", each hub publishing into its outbox; deliver() moves the events. */
function twoReplicas(): { a: Side; b: Side; deliver(): void } {
  const make = (id: string): Side => {
    const outbox: ReplicaEvent[] = [];
    const hub = new Hub(DEFAULT_LIMITS, undefined, { changed: (c) => void (eventOf(c) && outbox.push(eventOf(c)!)) });
    return { id, hub, outbox, mirror: undefined as unknown as Mirror };
  };
  const a = make('a'.repeat(16));
  const b = make('b'.repeat(16));
  // The mesh: a frame for a node mirrored on one side is handed to the other side's hub.
  a.mirror = new Mirror(a.hub, { send: (_r, key, frame) => b.hub.handleMeshFrame(a.id, Buffer.concat([key, frame])), buffered: () => 0 });
  b.mirror = new Mirror(b.hub, { send: (_r, key, frame) => a.hub.handleMeshFrame(b.id, Buffer.concat([key, frame])), buffered: () => 0 });
  return {
    a,
    b,
    deliver() {
      while (a.outbox.length + b.outbox.length > 0) {
        if (a.outbox.length) b.mirror.apply({ r: a.id, e: a.outbox.splice(0) });
        if (b.outbox.length) a.mirror.apply({ r: b.id, e: b.outbox.splice(0) });
      }
    },
  };
}

let nextIdentity = 1;
function connect(side: Side, kind: 'agent' | 'client', name: string, allow: string[] = [], key = randomKey()): { peer: Peer; link: FakeLink; key: string } {
  const link = new FakeLink();
  const peer = new Peer(nextIdentity++, kind, name, link, new Set(allow), 0, '198.51.100.9:5000', DEFAULT_LIMITS);
  assert.equal(side.hub.attach(peer, config(kind, name)).ok, true);
  side.hub.handleText(peer, JSON.stringify({ type: 'node', node: sampleNode(key) }));
  return { peer, link, key };
}

const updates = (link: FakeLink, kind: string, key: string): number =>
  link.texts.filter((m) => m.type === 'peers' && m.updates.some((u) => u.kind === kind && (u.kind === 'node' ? u.node.key === key : u.key === key))).length;

test('a tunnel across replicas: both ends get each other\'s node, updates, relay frames, and the close', () => {
  const { a, b, deliver } = twoReplicas();
  const agent = connect(a, 'agent', 'ws');
  deliver();
  const client = connect(b, 'client', 'dev', ['ws']);
  b.hub.handleText(client.peer, JSON.stringify({ type: 'tunnel', agent: 'ws' }));
  deliver();
  assert.ok(client.link.texts.some((m) => m.type === 'tunnel' && m.status === 'open'));
  assert.equal(updates(client.link, 'node', agent.key), 1);
  assert.equal(updates(agent.link, 'node', client.key), 1);
  // The mirrored node carries the address its own replica saw it come from.
  const seen = agent.link.texts.find((m) => m.type === 'peers' && m.updates[0]?.kind === 'node');
  assert.equal(seen?.type === 'peers' && seen.updates[0]?.kind === 'node' ? seen.updates[0].seenFrom : undefined, '198.51.100.9');

  a.hub.handleText(agent.peer, JSON.stringify({ type: 'node', node: sampleNode(agent.key, ['192.0.2.99:1']) }));
  deliver();
  assert.equal(updates(client.link, 'node', agent.key), 2);

  b.hub.handleBinary(client.peer, encodeRelayFrame(agent.key, Buffer.from('hello')));
  const got = decodeRelayFrame(agent.link.frames[0]!);
  assert.deepEqual(got, { key: client.key, payload: Buffer.from('hello') });

  b.hub.handleText(client.peer, JSON.stringify({ type: 'untunnel', agent: 'ws' }));
  deliver();
  assert.equal(updates(agent.link, 'disconnected', client.key), 1);
});

test('a replica may not deliver for a node it does not hold, nor outside a tunnel', () => {
  const { a, b, deliver } = twoReplicas();
  const agent = connect(a, 'agent', 'ws');
  const client = connect(b, 'client', 'dev', ['ws']);
  deliver();
  // No tunnel yet: nothing is delivered.
  a.hub.handleMeshFrame(b.id, Buffer.concat([Buffer.from(agent.key, 'hex'), Buffer.from(client.key, 'hex'), Buffer.from('x')]));
  assert.equal(agent.link.frames.length, 0);
  b.hub.handleText(client.peer, JSON.stringify({ type: 'tunnel', agent: 'ws' }));
  deliver();
  // A third replica claiming to speak for b's client is refused.
  a.hub.handleMeshFrame('c'.repeat(16), Buffer.concat([Buffer.from(agent.key, 'hex'), Buffer.from(client.key, 'hex'), Buffer.from('x')]));
  // A frame for a node that is not a's own is refused (b's client is only mirrored on a).
  a.hub.handleMeshFrame(b.id, Buffer.concat([Buffer.from(client.key, 'hex'), Buffer.from(client.key, 'hex'), Buffer.from('x')]));
  // Malformed: shorter than two keys.
  a.hub.handleMeshFrame(b.id, Buffer.alloc(40));
  assert.equal(agent.link.frames.length, 0);
  a.hub.handleMeshFrame(b.id, Buffer.concat([Buffer.from(agent.key, 'hex'), Buffer.from(client.key, 'hex'), Buffer.from('ok')]));
  assert.equal(agent.link.frames.length, 1);
});

test('a dead replica\'s nodes are lost, not disconnected; the agent back on the other replica is announced again', () => {
  const { a, b, deliver } = twoReplicas();
  const agent = connect(a, 'agent', 'ws');
  const client = connect(b, 'client', 'dev', ['ws']);
  b.hub.handleText(client.peer, JSON.stringify({ type: 'tunnel', agent: 'ws' }));
  deliver();
  assert.equal(b.mirror.dropReplica(a.id), 1);
  assert.equal(updates(client.link, 'lost', agent.key), 1);
  assert.equal(updates(client.link, 'disconnected', agent.key), 0);
  // The same agent (same key) reconnects to b: its client hears of it again, without a "replaced" notice.
  const back = connect(b, 'agent', 'ws', [], agent.key);
  assert.equal(updates(client.link, 'node', agent.key), 2);
  assert.ok(!back.link.texts.some((m) => m.type === 'config' && m.notice !== undefined));
});

test('a node that reconnects through another replica before the old one noticed takes its key along', () => {
  const { a, b, deliver } = twoReplicas();
  const agent = connect(a, 'agent', 'ws');
  const client = connect(b, 'client', 'dev', ['ws']);
  b.hub.handleText(client.peer, JSON.stringify({ type: 'tunnel', agent: 'ws' }));
  deliver();
  // The agent's connection to a is half dead; it connects to b with the same key.
  const moved = connect(b, 'agent', 'ws', [], agent.key);
  assert.equal(updates(client.link, 'lost', agent.key), 1, 'the client sees it lost, then back');
  assert.equal(updates(client.link, 'node', agent.key), 2);
  deliver();
  // Replica a closes its stale connection of the agent, which does not reconnect from there.
  assert.equal(agent.link.closed?.[0], CloseCode.replaced);
  b.hub.handleBinary(client.peer, encodeRelayFrame(agent.key, Buffer.from('to the new connection')));
  assert.equal(moved.link.frames.length, 1);
  assert.equal(agent.link.frames.length, 0);
});

test('a resync repeats a replica\'s nodes and tunnels; applying it twice changes nothing', () => {
  const { a, b } = twoReplicas();
  const client = connect(b, 'client', 'dev', ['ws']);
  b.hub.handleText(client.peer, JSON.stringify({ type: 'tunnel', agent: 'ws' }));
  const snapshot = snapshotOf(client.peer);
  assert.deepEqual(snapshot.map((e) => e.t), ['attach', 'node', 'tunnel']);
  a.mirror.apply({ r: b.id, e: snapshot });
  a.mirror.apply({ r: b.id, e: snapshot });
  assert.equal(a.mirror.size, 1);
  const agent = connect(a, 'agent', 'ws');
  assert.equal(updates(agent.link, 'node', client.key), 1);
});
