// PeerPaths, the pure per-peer path state machine, driven on a simulated clock: no sleeps, no
// sockets. A small driver plays the engine (tick, send what is due, feed back pongs) and a
// network (which endpoint answers, how fast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerPaths, type PeerPathsOptions } from '../../src/magicsock/peer-paths.js';

const PUB_A = '203.0.113.5:4000';
const PUB_B = '198.51.100.7:5000';
const LAN = '192.168.1.20:4000';

interface Sent {
  readonly t: number;
  readonly endpoint: string;
  readonly txid: string;
}

/** Plays the engine around one PeerPaths: ticks, sends what is due, delivers pongs on time. */
class Driver {
  readonly sent: Sent[] = [];
  /** ms until a ping to an endpoint is answered; absent or null: it never is. */
  readonly answers = new Map<string, number | null>();
  private readonly inFlight: { at: number; txid: string; endpoint: string }[] = [];
  private n = 0;
  now = 0;

  constructor(readonly paths: PeerPaths) {}

  /** Advances to `until`, one engine tick (25 ms, as MagicSock) at a time. */
  run(until: number, tickMs = 25): void {
    for (; this.now <= until; this.now += tickMs) this.tick(this.now);
  }

  tick(now: number): void {
    // Pongs first, as the socket delivers them between timer ticks.
    for (const f of this.inFlight.filter((x) => x.at <= now)) {
      this.inFlight.splice(this.inFlight.indexOf(f), 1);
      this.paths.pongReceived(f.txid, f.endpoint, f.at);
    }
    for (const endpoint of this.paths.due(now)) {
      const txid = `tx${this.n++}`;
      this.paths.pingSent(txid, endpoint, now);
      this.sent.push({ t: now, endpoint, txid });
      const rtt = this.answers.get(endpoint);
      if (rtt !== undefined && rtt !== null) this.inFlight.push({ at: now + rtt, txid, endpoint });
    }
  }

  /** The distinct times at which something was sent, in [from, to]. */
  roundTimes(from = 0, to = Infinity): number[] {
    return [...new Set(this.sent.filter((s) => s.t >= from && s.t <= to).map((s) => s.t))];
  }

  sentTo(endpoint: string, from = 0, to = Infinity): number[] {
    return this.sent.filter((s) => s.endpoint === endpoint && s.t >= from && s.t <= to).map((s) => s.t);
  }
}

function paths(extra: Partial<PeerPathsOptions> = {}): PeerPaths {
  return new PeerPaths({ directAllowed: true, ...extra });
}

test('burst: every candidate at exactly 0, 100, 200, 400, 800, 1600 and 3200 ms, then nothing until the upgrade search', () => {
  const p = paths();
  assert.equal(p.setPublished([PUB_A, PUB_B]), true);
  p.startBurst(0);
  const d = new Driver(p);
  d.run(8000, 1);
  assert.deepEqual(d.roundTimes(0, 8000), [0, 100, 200, 400, 800, 1600, 3200]);
  for (const t of d.roundTimes()) assert.deepEqual(d.sent.filter((s) => s.t === t).map((s) => s.endpoint), [PUB_A, PUB_B], `round at ${t}`);
  assert.equal(d.sent.length, 14, 'two candidates, seven rounds');
});

test('a burst started later is offset from its own start, and a late tick sends one round, not a catch-up flood', () => {
  const p = paths();
  p.setPublished([PUB_A]);
  p.startBurst(1000);
  assert.deepEqual(p.due(999), []);
  assert.deepEqual(p.due(1000), [PUB_A]);
  // The engine was blocked for 700 ms: the 100, 200 and 400 ms rounds collapse into one.
  assert.deepEqual(p.due(1700), [PUB_A]);
  assert.deepEqual(p.due(1750), []);
  assert.deepEqual(p.due(1800), [PUB_A], 'the 800 ms round');
});

test('while relayed: every candidate every 5 s after the burst (the upgrade search)', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.startBurst(0);
  const d = new Driver(p);
  d.run(30_000, 1);
  assert.deepEqual(d.roundTimes(3201, 30_000), [8200, 13_200, 18_200, 23_200, 28_200]);
  for (const t of d.roundTimes(3201)) assert.equal(d.sent.filter((s) => s.t === t).length, 2, `both candidates at ${t}`);
  assert.deepEqual(p.current(30_000), { kind: 'relay' });
});

test('a candidate that answers makes the path direct within the pong, and heartbeats go only to it, every 2 s', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.startBurst(0);
  const d = new Driver(p);
  d.answers.set(PUB_A, 20);
  d.run(0);
  assert.deepEqual(p.current(10), { kind: 'relay' });
  d.run(25); // the pong sent at 0 arrives at 20
  assert.deepEqual(p.current(25), { kind: 'direct', endpoint: PUB_A }, 'direct once the first pong is in');
  assert.equal(p.bestLatency(), 20);
  d.run(27_000);
  // After the burst (last round 3200 ms) and before the 25 s full round: only the chosen endpoint.
  assert.deepEqual(d.sentTo(PUB_B, 3201, 27_000), [], 'nothing to the silent candidate while direct');
  const beats = d.sentTo(PUB_A, 3201, 27_000);
  assert.deepEqual(beats, [5200, 7200, 9200, 11_200, 13_200, 15_200, 17_200, 19_200, 21_200, 23_200, 25_200]);
  assert.deepEqual(p.current(27_000), { kind: 'direct', endpoint: PUB_A });
});

test('while direct, a full round every 25 s looks for a better path', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.startBurst(0);
  const d = new Driver(p);
  d.answers.set(PUB_A, 5);
  d.run(60_000);
  assert.deepEqual(d.roundTimes(3201).filter((t) => d.sentTo(PUB_B, t, t).length > 0), [28_200, 53_200]);
});

test('a pong only counts from the endpoint that was pinged, once, and only for a ping we sent', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.pingSent('t1', PUB_A, 0);
  assert.equal(p.pongReceived('t1', PUB_B, 10), null, 'answered from another address');
  assert.deepEqual(p.current(10), { kind: 'relay' });
  assert.equal(p.pongReceived('never-sent', PUB_A, 10), null, 'unknown txid');
  p.pingSent('t2', PUB_A, 20);
  assert.deepEqual(p.pongReceived('t2', PUB_A, 32), { endpoint: PUB_A, latencyMs: 12 });
  assert.equal(p.pongReceived('t2', PUB_A, 33), null, 'the same pong twice');
  assert.deepEqual(p.current(33), { kind: 'direct', endpoint: PUB_A });
});

test('trust: 6.5 s after the last pong the path falls back to the relay at once, and the upgrade search resumes at once', () => {
  const p = paths();
  p.setPublished([PUB_A]);
  p.startBurst(0);
  const d = new Driver(p);
  d.answers.set(PUB_A, 10);
  d.run(10_000);
  const lastPong = 9200 + 10; // heartbeat at 9200 answered 10 ms later
  d.answers.set(PUB_A, null); // the mapping is gone
  d.run(lastPong + 6500 - 10);
  assert.deepEqual(p.current(lastPong + 6500), { kind: 'direct', endpoint: PUB_A }, 'still trusted at exactly 6.5 s');
  assert.deepEqual(p.current(lastPong + 6501), { kind: 'relay' }, 'relay 1 ms later');
  assert.equal(p.bestLatency(), null);
  // Heartbeats went on while trusted; now a discovery round is due at once (the last was at 3200).
  assert.deepEqual(p.due(lastPong + 6501), [PUB_A]);
});

test('LAN endpoints are preferred to public ones, even when slower, and take over when they start answering', () => {
  const p = paths();
  p.setPublished([PUB_A, LAN]);
  p.pingSent('pub', PUB_A, 0);
  p.pongReceived('pub', PUB_A, 3);
  assert.deepEqual(p.current(3), { kind: 'direct', endpoint: PUB_A });
  p.pingSent('lan', LAN, 10);
  p.pongReceived('lan', LAN, 40);
  assert.deepEqual(p.current(40), { kind: 'direct', endpoint: LAN }, 'the LAN path wins at 30 ms against 3 ms');
  // The public path answering faster again does not take it back.
  p.pingSent('pub2', PUB_A, 50);
  p.pongReceived('pub2', PUB_A, 51);
  assert.deepEqual(p.current(51), { kind: 'direct', endpoint: LAN });
});

test('stickiness: another endpoint must be 20% faster to take over; jittery equals do not flap', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.pingSent('a', PUB_A, 0);
  p.pongReceived('a', PUB_A, 10);
  p.pingSent('b', PUB_B, 0);
  p.pongReceived('b', PUB_B, 9);
  assert.deepEqual(p.current(10), { kind: 'direct', endpoint: PUB_A }, '9 ms is not enough better than 10 ms');
  // Two equal paths with jitter: 500 rounds, each answering in 9..11 ms in turn.
  let switches = 0;
  let cur = p.current(10);
  for (let i = 1; i <= 500; i++) {
    const t = i * 100;
    const ja = 9 + ((i * 7) % 3);
    const jb = 9 + ((i * 5) % 3);
    p.pingSent(`a${i}`, PUB_A, t);
    p.pongReceived(`a${i}`, PUB_A, t + ja);
    p.pingSent(`b${i}`, PUB_B, t);
    p.pongReceived(`b${i}`, PUB_B, t + jb);
    const now = p.current(t + 20);
    if (now.kind === 'direct' && cur.kind === 'direct' && now.endpoint !== cur.endpoint) switches++;
    cur = now;
  }
  assert.equal(switches, 0);
  // A clearly faster path does take over (EWMA: a few samples at 2 ms bring B under 8 ms).
  for (let i = 0; i < 5; i++) {
    p.pingSent(`fast${i}`, PUB_B, 50_100 + i);
    p.pongReceived(`fast${i}`, PUB_B, 50_102 + i);
  }
  assert.deepEqual(p.current(50_110), { kind: 'direct', endpoint: PUB_B });
});

test('observed endpoints: added as candidates, kept when the peer republishes, never duplicated', () => {
  const p = paths();
  p.setPublished([PUB_A]);
  assert.equal(p.observed(PUB_B), true);
  assert.equal(p.observed(PUB_B), false, 'already known');
  assert.equal(p.observed(PUB_A), false, 'already published');
  assert.equal(p.observed('not an endpoint'), false);
  assert.equal(p.setPublished([LAN]), true);
  assert.deepEqual(p.endpoints.sort(), [LAN, PUB_B].sort(), 'the old published endpoint goes, the observed one stays');
  assert.equal(p.setPublished([LAN]), false, 'nothing new: no reason for a burst');
});

test('republishing keeps the endpoint in use even if the peer no longer lists it', () => {
  const p = paths();
  p.setPublished([PUB_A, PUB_B]);
  p.pingSent('a', PUB_A, 0);
  p.pongReceived('a', PUB_A, 5);
  p.setPublished([PUB_B]);
  assert.deepEqual(p.endpoints.sort(), [PUB_A, PUB_B].sort());
  assert.deepEqual(p.current(6), { kind: 'direct', endpoint: PUB_A });
});

test('candidate cap: an observed endpoint that never answered makes room; published ones are never evicted', () => {
  const p = paths({ maxCandidates: 3 });
  p.setPublished([PUB_A, PUB_B]);
  assert.equal(p.observed('203.0.113.9:1'), true);
  assert.equal(p.observed('203.0.113.9:2'), true, 'evicts the first observed one');
  assert.deepEqual(p.endpoints.sort(), [PUB_A, PUB_B, '203.0.113.9:2'].sort());
  const full = paths({ maxCandidates: 3 });
  full.setPublished([PUB_A, PUB_B, LAN]);
  assert.equal(full.observed('203.0.113.9:1'), false, 'no observed victim: refused');
  assert.equal(full.endpoints.length, 3);
  const many = paths();
  many.setPublished(Array.from({ length: 100 }, (_, i) => `203.0.113.1:${1000 + i}`));
  assert.equal(many.endpoints.length, 40, 'the default cap');
});

test('directAllowed=false: no candidates, no pings ever, always the relay', () => {
  const p = new PeerPaths({ directAllowed: false });
  assert.equal(p.setPublished([PUB_A, LAN]), false);
  assert.equal(p.observed(PUB_B), false);
  p.startBurst(0);
  const d = new Driver(p);
  d.answers.set(PUB_A, 1);
  d.run(60_000, 5);
  assert.deepEqual(d.sent, []);
  assert.deepEqual(p.endpoints, []);
  p.pingSent('x', PUB_A, 0);
  assert.equal(p.pongReceived('x', PUB_A, 1)?.endpoint, PUB_A, 'the latency is reported, but...');
  assert.deepEqual(p.current(2), { kind: 'relay' }, '...an unknown endpoint never becomes the path');
});

test('reset (a network change) forgets every answer and starts a new burst', () => {
  const p = paths();
  p.setPublished([PUB_A]);
  p.startBurst(0);
  const d = new Driver(p);
  d.answers.set(PUB_A, 10);
  d.run(5000);
  assert.equal(p.current(5000).kind, 'direct');
  d.now = 5000;
  p.reset(5000);
  assert.deepEqual(p.current(5000), { kind: 'relay' });
  d.sent.length = 0;
  d.answers.set(PUB_A, null);
  d.run(9000, 1);
  assert.deepEqual(d.roundTimes(5000), [5000, 5100, 5200, 5400, 5800, 6600, 8200]);
});

test('a pong that comes after the pending ping expired (5 s) is not counted', () => {
  const p = paths();
  p.setPublished([PUB_A]);
  p.pingSent('late', PUB_A, 0);
  p.due(5001); // the engine's tick expires pending pings
  assert.equal(p.pongReceived('late', PUB_A, 5002), null);
  assert.deepEqual(p.current(5002), { kind: 'relay' });
});
