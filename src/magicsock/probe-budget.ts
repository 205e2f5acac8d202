// How much disco a node may send to direct addresses, so that a client that is allowed to reach
// an agent cannot turn it into a reflector or a port scanner. Pure and clock-injected (ms).
//
// Bounds (with the defaults below; "group" is the peer's identity, however many keys it has):
//   - to an address the coordinator did not vouch for (probe-aim.ts): 0 packets, ever;
//   - probes (pings, pongs and anything else to an endpoint that has not answered one of our
//     pings): per identity at most 200 packets at once and 50 packets/s after that (so at most
//     200 + 50*T packets in any T seconds), 64 KiB at once and 16 KiB/s, and at most 256 distinct
//     destinations (ip:port) in any 60 s; per node, over all identities, 1000 packets at once
//     and 250/s, 256 KiB and 64 KiB/s, 1024 destinations in any 60 s;
//   - port prediction: at most one attempt per identity per 60 s and 8 per node per 60 s, each
//     at most 2,560 packets within 30 s of its start (the easy side sends 2,000 probes, the hard
//     side 256 sockets x 2 endpoints x 5 rounds), and only to the vouched IP.
// An endpoint that answered our ping with an authentic pong carrying our random txid is the
// peer's own (its path), not a probe target: that traffic is the tunnel's and is not counted.
//
// Normal operation stays far inside these: a punching burst is 7 rounds over 3.2 s to each
// candidate (a few per node), a relayed peer gets a round every 5 s, a direct one a heartbeat.

export interface Rate {
  /** Tokens at once (the bucket's size). */
  readonly burst: number;
  /** Tokens per second after that. */
  readonly perSec: number;
}

export interface ProbeLimits {
  readonly groupPackets: Rate;
  readonly groupBytes: Rate;
  readonly groupDestinations: number;
  readonly nodePackets: Rate;
  readonly nodeBytes: Rate;
  readonly nodeDestinations: number;
  /** The window over which distinct destinations are counted (ms). */
  readonly destinationWindowMs: number;
  /** At most one port-prediction attempt per group this often (ms). */
  readonly predictionIntervalMs: number;
  readonly predictionsPerNode: number;
  readonly predictionPackets: number;
  /** How long an attempt's packets may take (ms). */
  readonly predictionLifetimeMs: number;
}

export const DEFAULT_PROBE_LIMITS: ProbeLimits = {
  groupPackets: { burst: 200, perSec: 50 },
  groupBytes: { burst: 64 * 1024, perSec: 16 * 1024 },
  // An identity may run 64 nodes at once (each forward, ssh session and ping is one, each with a
  // new port), each with a few candidates: 256 lets them all punch; a scan gets ~4 ports/s.
  groupDestinations: 256,
  nodePackets: { burst: 1000, perSec: 250 },
  nodeBytes: { burst: 256 * 1024, perSec: 64 * 1024 },
  nodeDestinations: 1024,
  destinationWindowMs: 60_000,
  predictionIntervalMs: 60_000,
  predictionsPerNode: 8,
  predictionPackets: 2560,
  predictionLifetimeMs: 30_000,
};

/** A token bucket; `has` then `take`, so several buckets can be checked before any is spent. */
export class TokenBucket {
  private tokens: number;
  private last: number | null = null;

  constructor(private readonly rate: Rate) {
    this.tokens = rate.burst;
  }

  has(n: number, now: number): boolean {
    this.refill(now);
    return this.tokens >= n;
  }

  take(n: number): void {
    this.tokens -= n;
  }

  /** Whether the bucket is as full as a new one would be (its state can be dropped). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate.burst;
  }

  private refill(now: number): void {
    if (this.last !== null && now > this.last) this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.last) / 1000) * this.rate.perSec);
    if (this.last === null || now > this.last) this.last = now;
  }
}

/** Distinct destinations within a sliding window, at most `cap` of them. */
export class DestinationWindow {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly cap: number,
    private readonly windowMs: number,
  ) {}

  /** Whether a packet to `dest` fits: already in the window, or room for one more. */
  has(dest: string, now: number): boolean {
    this.expire(now);
    return this.seen.has(dest) || this.seen.size < this.cap;
  }

  /** Counts `dest` from its first packet in the window (a later packet does not extend it). */
  take(dest: string, now: number): void {
    if (!this.seen.has(dest)) this.seen.set(dest, now);
  }

  empty(now: number): boolean {
    this.expire(now);
    return this.seen.size === 0;
  }

  private expire(now: number): void {
    // Insertion order is time order: the oldest come first.
    for (const [d, t] of this.seen) {
      if (now - t < this.windowMs) break;
      this.seen.delete(d);
    }
  }
}

interface Budget {
  readonly packets: TokenBucket;
  readonly bytes: TokenBucket;
  readonly destinations: DestinationWindow;
}

interface Prediction {
  readonly startedAt: number;
  left: number;
}

/** Idle groups are dropped when there are more than this (a dropped group is exactly a new one). */
const MAX_IDLE_GROUPS = 1024;

export class ProbeBudget {
  private readonly node: Budget;
  private readonly groups = new Map<string, Budget>();
  private readonly predictions = new Map<string, Prediction>();
  private predictionStarts: number[] = [];

  constructor(readonly limits: ProbeLimits = DEFAULT_PROBE_LIMITS) {
    this.node = this.budget(limits.nodePackets, limits.nodeBytes, limits.nodeDestinations);
  }

  /** Whether a probe of `bytes` to `dest` fits the group's and the node's budget; spends it if so. */
  allowProbe(group: string, dest: string, bytes: number, now: number): boolean {
    const g = this.group(group, now);
    for (const b of [g, this.node]) {
      if (!b.packets.has(1, now) || !b.bytes.has(bytes, now) || !b.destinations.has(dest, now)) return false;
    }
    for (const b of [g, this.node]) {
      b.packets.take(1);
      b.bytes.take(bytes);
      b.destinations.take(dest, now);
    }
    return true;
  }

  /**
   * Starts a port-prediction attempt for the group if none started within the interval and the
   * node has room; false otherwise (then the attempt must not start).
   */
  beginPrediction(group: string, now: number): boolean {
    const { predictionIntervalMs: every, predictionsPerNode } = this.limits;
    const last = this.predictions.get(group);
    if (last && now - last.startedAt < every) return false;
    this.predictionStarts = this.predictionStarts.filter((t) => now - t < every);
    if (this.predictionStarts.length >= predictionsPerNode) return false;
    this.predictionStarts.push(now);
    this.predictions.set(group, { startedAt: now, left: this.limits.predictionPackets });
    return true;
  }

  /** Whether one more packet of the group's running port-prediction attempt may go; spends it. */
  allowPrediction(group: string, now: number): boolean {
    const p = this.predictions.get(group);
    if (!p || p.left <= 0 || now - p.startedAt > this.limits.predictionLifetimeMs) return false;
    p.left--;
    return true;
  }

  private group(name: string, now: number): Budget {
    let g = this.groups.get(name);
    if (!g) {
      if (this.groups.size >= MAX_IDLE_GROUPS) this.dropIdle(now);
      g = this.budget(this.limits.groupPackets, this.limits.groupBytes, this.limits.groupDestinations);
      this.groups.set(name, g);
    }
    return g;
  }

  private budget(packets: Rate, bytes: Rate, destinations: number): Budget {
    return { packets: new TokenBucket(packets), bytes: new TokenBucket(bytes), destinations: new DestinationWindow(destinations, this.limits.destinationWindowMs) };
  }

  private dropIdle(now: number): void {
    for (const [k, g] of this.groups) if (g.packets.full(now) && g.bytes.full(now) && g.destinations.empty(now)) this.groups.delete(k);
    for (const [k, p] of this.predictions) if (now - p.startedAt >= this.limits.predictionIntervalMs) this.predictions.delete(k);
  }
}
