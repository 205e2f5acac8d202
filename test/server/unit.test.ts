// The pure pieces: tokens, durations, backoff, rate limit, schemas, relay frames, the hub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelay } from '../../src/node/backoff.js';
import { parseDuration } from '../../src/cli/duration.js';
import { DEFAULT_LIMITS, Hub, Peer, truncate, type PeerLink } from '../../src/server/hub.js';
import { clientMessage, MAX_PEER_UPDATES_PER_MESSAGE, type ServerConfig, type ServerMessage } from '../../src/coordination/protocol.js';
import { decodeRelayFrame, encodeRelayFrame } from '../../src/coordination/relay-frame.js';
import { TokenBucket } from '../../src/server/rate-limit.js';
import { bearerToken, generateToken, hashToken, hashesEqual, TOKEN_PREFIX } from '../../src/server/tokens.js';
import { stunList } from '../../src/cli/server.js';
import { randomKey, relayFrame, sampleNode } from './helpers.js';

test('tokens carry 256 random bits and are stored as SHA-256', () => {
  const a = generateToken();
  assert.ok(a.startsWith(TOKEN_PREFIX));
  assert.equal(Buffer.from(a.slice(TOKEN_PREFIX.length), 'base64url').length, 32);
  assert.notEqual(a, generateToken());
  assert.match(hashToken(a), /^[0-9a-f]{64}$/);
  assert.ok(hashesEqual(hashToken(a), hashToken(a)));
  assert.ok(!hashesEqual(hashToken(a), hashToken(generateToken())));
  assert.ok(!hashesEqual('', ''));
  assert.equal(bearerToken(`Bearer ${a}`), a);
  assert.equal(bearerToken(`Basic ${a}`), undefined);
  assert.equal(bearerToken(undefined), undefined);
});

test('durations', () => {
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  for (const bad of ['', '30', 'd', '0d', '1y', '-1d']) assert.throws(() => parseDuration(bad), /duration/);
});

test('backoff grows, is capped, never hits zero', () => {
  fc.assert(
    fc.property(fc.nat(100), fc.double({ min: 0, max: 0.9999, noNaN: true }), (attempt, r) => {
      const d = backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }, () => r);
      return d >= 50 && d <= 5000;
    }),
  );
  assert.equal(backoffDelay(3, { baseMs: 100, maxMs: 5000 }, () => 0.999), 799);
});

test('token bucket: burst, then the sustained rate', () => {
  const b = new TokenBucket(10, 20, 0);
  let ok = 0;
  for (let i = 0; i < 50; i++) if (b.take(0)) ok++;
  assert.equal(ok, 20);
  assert.equal(b.take(50), false); // 0.5 token back
  assert.equal(b.take(100), true);
  assert.equal(new TokenBucket(0, 0, 0).take(0, 1e9), true);
});

test('schemas: keys, endpoints and bounds', () => {
  const ok = clientMessage.safeParse({ type: 'node', node: sampleNode(randomKey(), ['[2001:db8::1]:41641', '192.0.2.1:1']) });
  assert.ok(ok.success);
  const bad = [
    { type: 'node', node: sampleNode(randomKey().toUpperCase()) },
    { type: 'node', node: sampleNode(randomKey(), ['example.com:80']) },
    // Endpoints a peer could be made to aim at a victim or the whole network with.
    { type: 'node', node: sampleNode(randomKey(), ['999.999.999.999:99999']) },
    { type: 'node', node: sampleNode(randomKey(), ['192.0.2.1:0']) },
    { type: 'node', node: sampleNode(randomKey(), ['255.255.255.255:53']) },
    { type: 'node', node: sampleNode(randomKey(), ['0.0.0.0:41641']) },
    { type: 'node', node: sampleNode(randomKey(), ['224.0.0.251:5353']) },
    { type: 'node', node: sampleNode(randomKey(), ['[::]:41641']) },
    { type: 'node', node: sampleNode(randomKey(), ['[ff02::1]:41641']) },
    { type: 'node', node: sampleNode(randomKey(), ['[::ffff:255.255.255.255]:53']) },
    { type: 'path', peer: randomKey(), path: { kind: 'direct', endpoint: '192.0.2.1:70000' } },
    { type: 'node', node: sampleNode(randomKey(), Array.from({ length: 33 }, (_, i) => `192.0.2.1:${1000 + i}`)) },
    { type: 'node', node: { ...sampleNode(randomKey()), updatedAt: -1 } },
    { type: 'path', peer: randomKey(), path: { kind: 'direct' } },
    { type: 'tunnel', agent: '../etc' },
  ];
  for (const m of bad) assert.equal(clientMessage.safeParse(m).success, false, JSON.stringify(m));
});

test('relay frames round-trip', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 4096 }), (key, payload) => {
      const hex = Buffer.from(key).toString('hex');
      const f = relayFrame(encodeRelayFrame(hex, payload));
      return f.key === hex && Buffer.from(payload).equals(f.payload);
    }),
  );
  assert.equal(decodeRelayFrame(Buffer.alloc(31)), 'too-short');
  assert.equal(decodeRelayFrame(Buffer.alloc(32 + 4097)), 'too-long');
});

test('close reasons fit in 123 bytes', () => {
  assert.ok(Buffer.byteLength(truncate('é'.repeat(200))) <= 123);
  assert.equal(truncate('short'), 'short');
});

test('--stun values', () => {
  assert.deepEqual(stunList([], false), [], 'no third-party STUN server by default');
  assert.deepEqual(stunList([], true), []);
  assert.deepEqual(stunList(['disable'], false), []);
  assert.deepEqual(stunList(['10.0.0.1', '[::1]:3000'], false), ['10.0.0.1:3478', '[::1]:3000']);
  assert.throws(() => stunList(['disable', '10.0.0.1'], false), /disable/);
});

// ---- the hub with in-memory links ----

class FakeLink implements PeerLink {
  texts: ServerMessage[] = [];
  frames: Buffer[] = [];
  closed: [number, string] | null = null;
  buffered = 0;
  sendText(t: string): void {
    this.texts.push(JSON.parse(t) as ServerMessage);
  }
  sendBinary(f: Buffer): void {
    this.frames.push(Buffer.from(f));
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  close(code: number, reason: string): void {
    this.closed = [code, reason];
  }
}

function configFor(kind: 'agent' | 'client', name: string): ServerConfig {
  const challenge = { key: '00'.repeat(32), nonce: '00'.repeat(32) };
  return { type: 'config', version: 1, identity: { name, kind }, stun: [], relay: { enabled: true, maxPayload: 4096 }, blockDirect: false, pingIntervalMs: 1000, challenge };
}

function hubPeer(hub: Hub, kind: 'agent' | 'client', name: string, allow: string[] = []): { peer: Peer; link: FakeLink; key: string } {
  const link = new FakeLink();
  const peer = new Peer(1, kind, name, link, new Set(allow), 0, null, DEFAULT_LIMITS);
  hub.attach(peer, configFor(kind, name));
  const key = randomKey();
  hub.handleText(peer, JSON.stringify({ type: 'node', node: sampleNode(key) }));
  return { peer, link, key };
}

test('hub: tunnels, fan-out, relay only inside a tunnel, slow receivers drop', () => {
  let now = 0;
  const hub = new Hub(DEFAULT_LIMITS, undefined, {}, () => (now += 10));
  const a = hubPeer(hub, 'agent', 'ws1');
  const b = hubPeer(hub, 'agent', 'ws2');
  const c = hubPeer(hub, 'client', 'laptop', ['ws1']);
  hub.handleText(c.peer, JSON.stringify({ type: 'tunnel', agent: 'ws2' }));
  assert.deepEqual(c.link.texts.at(-1), { type: 'tunnel', agent: 'ws2', status: 'refused', reason: 'not allowed' });
  hub.handleText(c.peer, JSON.stringify({ type: 'tunnel', agent: 'ws1' }));
  assert.ok(a.link.texts.some((m) => m.type === 'peers' && m.updates[0]?.kind === 'node' && m.updates[0].node.key === c.key));
  assert.ok(!b.link.texts.some((m) => m.type === 'peers'));
  // relay: to ws1 yes, to ws2 no
  hub.handleBinary(c.peer, encodeRelayFrame(a.key, Buffer.from('x')));
  hub.handleBinary(c.peer, encodeRelayFrame(b.key, Buffer.from('y')));
  assert.equal(a.link.frames.length, 1);
  assert.equal(relayFrame(a.link.frames[0]!).key, c.key);
  assert.equal(b.link.frames.length, 0);
  a.link.buffered = DEFAULT_LIMITS.maxRelayBuffered + 1;
  hub.handleBinary(c.peer, encodeRelayFrame(a.key, Buffer.from('z')));
  assert.equal(a.link.frames.length, 1);
  // revoking the rule ends the tunnel and the agent sees the client go
  hub.setAllow(c.peer, new Set());
  assert.deepEqual(c.link.texts.at(-1), { type: 'tunnel', agent: 'ws1', status: 'closed', reason: 'no longer allowed' });
  assert.ok(a.link.texts.at(-1)?.type === 'peers');
  // a lost agent is reported as lost to its clients
  hub.setAllow(c.peer, new Set(['ws1']));
  hub.handleText(c.peer, JSON.stringify({ type: 'tunnel', agent: 'ws1' }));
  hub.detach(a.peer, 'lost');
  assert.deepEqual(c.link.texts.at(-1), { type: 'peers', updates: [{ kind: 'lost', name: 'ws1', peerKind: 'agent', key: a.key }] });
  // a peer may not change its key within a connection, nor claim one in use
  const d = hubPeer(hub, 'client', 'changer');
  hub.handleText(d.peer, JSON.stringify({ type: 'node', node: sampleNode(randomKey()) }));
  assert.match(d.link.closed?.[1] ?? '', /key changed/);
  const e = new FakeLink();
  const ep = new Peer(9, 'client', 'e', e, new Set(), 0, null, DEFAULT_LIMITS);
  hub.attach(ep, configFor('client', 'e'));
  hub.handleText(ep, JSON.stringify({ type: 'node', node: sampleNode(b.key) }));
  assert.match(e.closed?.[1] ?? '', /another connected node/);
});

test('hub: a relayed path keeps the reason its reporter gave, for the views; a direct path clears it', () => {
  const hub = new Hub(DEFAULT_LIMITS);
  const a = hubPeer(hub, 'agent', 'ws1');
  const c = hubPeer(hub, 'client', 'kiosk', ['ws1']);
  hub.handleText(c.peer, JSON.stringify({ type: 'tunnel', agent: 'ws1' }));
  const reason = "UDP is blocked on kiosk's network: allow outbound UDP for a direct path";
  hub.handleText(c.peer, JSON.stringify({ type: 'path', peer: a.key, path: { kind: 'relay' }, reason }));
  assert.deepEqual(hub.tunnelsView({ kind: 'admin' })[0]?.relayReasons, { client: reason, agent: null });
  hub.handleText(c.peer, JSON.stringify({ type: 'path', peer: a.key, path: { kind: 'direct', endpoint: '198.51.100.7:41641' }, reason: 'stale' }));
  assert.deepEqual(hub.tunnelsView({ kind: 'admin' })[0]?.relayReasons, { client: null, agent: null });
  // A reason longer than the protocol allows closes the connection like any malformed message.
  hub.handleText(c.peer, JSON.stringify({ type: 'path', peer: a.key, path: { kind: 'relay' }, reason: 'x'.repeat(600) }));
  assert.equal(c.link.closed?.[0], 1008);
});

test('hub: an agent that comes back to many waiting clients learns them in messages of at most 32 nodes', () => {
  const hub = new Hub(DEFAULT_LIMITS);
  const clients = Array.from({ length: 70 }, (_, i) => hubPeer(hub, 'client', `laptop${i}`, ['ws9']));
  for (const c of clients) hub.handleText(c.peer, JSON.stringify({ type: 'tunnel', agent: 'ws9' }));
  const a = hubPeer(hub, 'agent', 'ws9');
  const peers = a.link.texts.filter((m) => m.type === 'peers');
  assert.deepEqual(peers.map((m) => m.updates.length), [MAX_PEER_UPDATES_PER_MESSAGE, MAX_PEER_UPDATES_PER_MESSAGE, 70 - 2 * MAX_PEER_UPDATES_PER_MESSAGE]);
  const told = new Set(peers.flatMap((m) => m.updates.map((u) => (u.kind === 'node' ? u.node.key : u.key))));
  assert.deepEqual([...told].sort(), clients.map((c) => c.key).sort());
});
