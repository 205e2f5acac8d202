// Per-source-IP token buckets with a bounded table.
//
// A STUN server answers anyone, so a spoofed flood can name millions of source addresses. The
// table therefore holds at most `maxEntries` buckets and evicts the least recently inserted one
// (Map keeps insertion order, so eviction is O(1)). An evicted address starts again with a full
// bucket: eviction can only make the limit more lenient, never block a legitimate client.
//
// The clock is injected (milliseconds) so tests drive it without sleeping.

export interface RateLimitOptions {
  /** Requests per second per source IP; 0 turns limiting off. */
  readonly rate: number;
  /** Bucket size: how many requests may arrive at once. Default: max(rate, 10). */
  readonly burst?: number;
  /** Bound on the number of tracked addresses. Default 65536 (a few MB at most). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  last: number;
}

export const DEFAULT_RATE_LIMIT = 200;
export const DEFAULT_MAX_ENTRIES = 65536;

export class SourceRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    if (!Number.isFinite(options.rate) || options.rate < 0) throw new RangeError(`rate limit ${options.rate} must be 0 or more`);
    this.rate = options.rate;
    this.burst = options.burst ?? Math.max(options.rate, 10);
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.now = options.now ?? (() => performance.now());
  }

  get enabled(): boolean {
    return this.rate > 0;
  }

  /** Number of addresses currently tracked (for tests and a gauge). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `ip`; false means the request should be dropped. */
  allow(ip: string): boolean {
    if (this.rate === 0) return true;
    const t = this.now();
    const b = this.buckets.get(ip);
    if (b === undefined) {
      if (this.buckets.size >= this.maxEntries) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
      this.buckets.set(ip, { tokens: this.burst - 1, last: t });
      return true;
    }
    const refill = ((t - b.last) / 1000) * this.rate;
    b.tokens = Math.min(this.burst, b.tokens + refill);
    b.last = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
