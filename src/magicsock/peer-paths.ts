// The path state of one peer: which of its candidate endpoints answer, how fast, and which path
// packets take now. Pure and clock-injected: the engine calls `due(now)` on a timer and sends
// the pings it returns, and feeds in what it hears.
//
// Schedule, bounded in packets:
//   - a punching burst on a new peer, a call-me-maybe or a network change: every candidate at
//     0, 100, 200, 400, 800, 1600 and 3200 ms after the start;
//   - while relayed, every candidate every 5 s (the upgrade search);
//   - while direct, a heartbeat to the chosen endpoint every 2 s, which keeps the NAT mappings
//     on both sides alive, and a full round every 25 s in case a better path (a LAN one) opened.
// A direct endpoint is trusted for 6.5 s after its last pong: three lost heartbeats and the
// tunnel falls back to the relay at once.
import { RELAY, type Path } from '../net/path.js';
import { splitEndpoint } from '../net/endpoint.js';
import { isPrivateAddress } from '../net/ip.js';
import { choosePath, DEFAULT_CHOICE_RULES, type ChoiceRules } from './path-choice.js';

export interface PeerPathsOptions {
  /** False for relay-only operation: no direct probes at all. */
  readonly directAllowed: boolean;
  readonly trustMs?: number;
  readonly heartbeatMs?: number;
  readonly discoveryMs?: number;
  readonly fullRoundMs?: number;
  readonly burstOffsetsMs?: readonly number[];
  /** At most this many candidates are kept (the coordinator sends at most 32; observed ones add a few). */
  readonly maxCandidates?: number;
  /** Overrides for the path-choice hysteresis (tests). */
  readonly choice?: Partial<ChoiceRules>;
}

type CandidateSource = 'node' | 'call-me-maybe' | 'observed';

interface Candidate {
  readonly endpoint: string;
  readonly private: boolean;
  source: CandidateSource;
  lastPingAt: number | null;
  lastPongAt: number | null;
  latencyMs: number | null;
}

interface PendingPing {
  readonly endpoint: string;
  readonly sentAt: number;
}

export interface PongResult {
  readonly endpoint: string;
  readonly latencyMs: number;
}

const PENDING_TTL_MS = 5000;
const MAX_PENDING = 512;

export class PeerPaths {
  private readonly candidates = new Map<string, Candidate>();
  private readonly pending = new Map<string, PendingPing>();
  private best: Candidate | null = null;
  /** When `best` last changed to another endpoint (null: none chosen since the last loss). */
  private switchedAt: number | null = null;
  private readonly rules: ChoiceRules;
  private burstStart: number | null = null;
  private burstIndex = 0;
  private lastRound: number | null = null;
  private readonly trustMs: number;
  private readonly heartbeatMs: number;
  private readonly discoveryMs: number;
  private readonly fullRoundMs: number;
  private readonly burst: readonly number[];
  private readonly maxCandidates: number;

  private directAllowed: boolean;

  constructor(private readonly options: PeerPathsOptions) {
    this.directAllowed = options.directAllowed;
    this.trustMs = options.trustMs ?? 6500;
    this.heartbeatMs = options.heartbeatMs ?? 2000;
    this.discoveryMs = options.discoveryMs ?? 5000;
    this.fullRoundMs = options.fullRoundMs ?? 25_000;
    this.burst = options.burstOffsetsMs ?? [0, 100, 200, 400, 800, 1600, 3200];
    this.maxCandidates = options.maxCandidates ?? 40;
    this.rules = { ...DEFAULT_CHOICE_RULES, ...options.choice };
  }

  /** Turns direct paths on or off (the server's --block-direct may change on a reconnect). */
  setDirectAllowed(allowed: boolean): void {
    this.directAllowed = allowed;
    if (!allowed) {
      this.candidates.clear();
      this.pending.clear();
      this.best = null;
      this.burstStart = null;
    }
  }

  /** The endpoints we may ping, for tests and status output. */
  get endpoints(): string[] {
    return [...this.candidates.keys()];
  }

  /**
   * Replaces the endpoints the peer published (keeps those we observed it at). Returns true if
   * something new appeared, which is worth a punching burst.
   */
  setPublished(endpoints: readonly string[], source: 'node' | 'call-me-maybe' = 'node'): boolean {
    if (!this.directAllowed) return false;
    let added = false;
    const keep = new Set(endpoints);
    if (source === 'node') {
      for (const [e, c] of this.candidates) {
        if (c.source === 'node' && !keep.has(e) && c !== this.best) this.candidates.delete(e);
      }
    }
    for (const e of endpoints) added = this.add(e, source) || added;
    return added;
  }

  /** A ping from the peer arrived from `endpoint`: a real source we can answer and probe. */
  observed(endpoint: string): boolean {
    if (!this.directAllowed) return false;
    return this.add(endpoint, 'observed');
  }

  /** Starts a punching burst at `now`. */
  startBurst(now: number): void {
    if (!this.directAllowed) return;
    this.burstStart = now;
    this.burstIndex = 0;
  }

  /** The endpoints to ping at `now` (the caller then reports each with pingSent). */
  due(now: number): string[] {
    if (!this.directAllowed || this.candidates.size === 0) return [];
    this.expire(now);
    const all = [...this.candidates.keys()];
    if (this.burstStart !== null) {
      const offset = this.burst[this.burstIndex];
      if (offset === undefined) {
        this.burstStart = null;
      } else if (now >= this.burstStart + offset) {
        while (this.burstIndex < this.burst.length && now >= this.burstStart + this.burst[this.burstIndex]!) this.burstIndex++;
        this.lastRound = now;
        return all;
      } else return [];
    }
    const best = this.current(now);
    if (best.kind === 'relay') {
      if (this.lastRound === null || now - this.lastRound >= this.discoveryMs) {
        this.lastRound = now;
        return all;
      }
      return [];
    }
    if (this.lastRound === null || now - this.lastRound >= this.fullRoundMs) {
      this.lastRound = now;
      return all;
    }
    const c = this.best!;
    if (c.lastPingAt === null || now - c.lastPingAt >= this.heartbeatMs) return [c.endpoint];
    return [];
  }

  pingSent(txidHex: string, endpoint: string, now: number): void {
    const c = this.candidates.get(endpoint);
    if (c) c.lastPingAt = now;
    if (this.pending.size >= MAX_PENDING) this.expire(now, true);
    this.pending.set(txidHex, { endpoint, sentAt: now });
  }

  /** A pong for one of our pings; only counts if it came from the endpoint we pinged. */
  pongReceived(txidHex: string, from: string, now: number): PongResult | null {
    const p = this.pending.get(txidHex);
    // A pong from elsewhere (a NAT rebinding, a stray copy) must not cancel the real one.
    if (!p || p.endpoint !== from) return null;
    this.pending.delete(txidHex);
    const latencyMs = now - p.sentAt;
    const c = this.candidates.get(from);
    if (!c) return { endpoint: from, latencyMs };
    c.lastPongAt = now;
    c.latencyMs = c.latencyMs === null ? latencyMs : 0.7 * c.latencyMs + 0.3 * latencyMs;
    this.choose(now);
    return { endpoint: from, latencyMs };
  }

  /** The path to use at `now`: the chosen direct endpoint while it is trusted, else the relay. */
  current(now: number): Path {
    if (this.best && (this.best.lastPongAt === null || now - this.best.lastPongAt > this.trustMs)) this.choose(now);
    return this.best ? { kind: 'direct', endpoint: this.best.endpoint } : RELAY;
  }

  /**
   * Whether `endpoint` answered one of our pings (an authentic pong with our random txid, from
   * there) within the trust time: the peer's own address, not a probe target.
   */
  confirmed(endpoint: string, now: number): boolean {
    const c = this.candidates.get(endpoint);
    return c !== undefined && c.lastPongAt !== null && now - c.lastPongAt <= this.trustMs;
  }

  /** Latency of the chosen direct path, smoothed; null while relayed. */
  bestLatency(): number | null {
    return this.best?.latencyMs ?? null;
  }

  /** Forget that any endpoint answered (a network change: mappings may be gone). */
  reset(now: number): void {
    for (const c of this.candidates.values()) {
      c.lastPongAt = null;
      c.latencyMs = null;
    }
    this.best = null;
    this.startBurst(now);
  }

  private add(endpoint: string, source: CandidateSource): boolean {
    const existing = this.candidates.get(endpoint);
    if (existing) {
      if (source !== 'observed') existing.source = source;
      return false;
    }
    const split = splitEndpoint(endpoint);
    if (!split) return false;
    if (this.candidates.size >= this.maxCandidates) {
      // Make room by dropping an observed endpoint that never answered.
      const victim = [...this.candidates.values()].find((c) => c.source === 'observed' && c.lastPongAt === null && c !== this.best);
      if (!victim) return false;
      this.candidates.delete(victim.endpoint);
    }
    this.candidates.set(endpoint, {
      endpoint,
      private: isPrivateAddress(split.address),
      source,
      lastPingAt: null,
      lastPongAt: null,
      latencyMs: null,
    });
    return true;
  }

  /** Picks the best trusted endpoint (path-choice.ts: LAN first, then round trip, with hysteresis). */
  private choose(now: number): void {
    const trusted = [...this.candidates.values()].filter((c) => c.lastPongAt !== null && now - c.lastPongAt <= this.trustMs);
    const next = choosePath(this.best, trusted, now, this.switchedAt, this.rules);
    if (next !== this.best) this.switchedAt = next === null ? null : now;
    this.best = next;
  }

  private expire(now: number, force = false): void {
    for (const [k, p] of this.pending) {
      if (force || now - p.sentAt > PENDING_TTL_MS) this.pending.delete(k);
      if (force && this.pending.size < MAX_PENDING / 2) break;
    }
  }
}
