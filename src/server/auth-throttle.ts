// Failed authentication costs the one who fails: each source address has a budget of failures
// (a token bucket); once it is spent, its requests are refused with 429 before any token is
// hashed or looked up, until the budget refills. The table of addresses is bounded (oldest out),
// so a spoofed or distributed flood cannot grow memory. Clock-injected for tests.
//
// The log says what happened at most once per interval, in one line, so a flood cannot flood
// the log either.
export interface AuthThrottleOptions {
  /** Failures per second an address may keep up (refill rate). */
  readonly failuresPerSec: number;
  /** Failures an address may make at once. */
  readonly burst: number;
  /** Addresses remembered at most. */
  readonly maxAddresses: number;
  /** At most one summary line this often (ms). */
  readonly logIntervalMs: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { failuresPerSec: 1, burst: 10, maxAddresses: 65536, logIntervalMs: 10_000 };

interface Bucket {
  tokens: number;
  last: number;
}

export interface AuthFailureSummary {
  readonly failures: number;
  readonly refused: number;
  readonly addresses: number;
  /** The address with the most failures in the interval, and how many. */
  readonly top: { readonly address: string; readonly failures: number };
}

export class AuthThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private window = new Map<string, number>();
  private refusedInWindow = 0;
  private windowStart: number;

  constructor(
    private readonly opts: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
    private readonly now: () => number = Date.now,
    /** Told of the interval's failures, at most once per logIntervalMs. */
    private readonly report: (s: AuthFailureSummary) => void = () => undefined,
  ) {
    this.windowStart = now();
  }

  /** Whether `address` may try to authenticate now (false: answer 429 without looking). */
  allowed(address: string): boolean {
    const b = this.buckets.get(address);
    if (!b) return true;
    this.refill(b);
    if (b.tokens >= 1) return true;
    this.refusedInWindow++;
    this.maybeReport();
    return false;
  }

  /** Charges one failure to `address`. */
  failed(address: string): void {
    let b = this.buckets.get(address);
    if (b) {
      this.refill(b);
      this.buckets.delete(address); // re-insert: the map's order is least recently failed first
    } else {
      b = { tokens: this.opts.burst, last: this.now() };
      if (this.buckets.size >= this.opts.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    }
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.set(address, b);
    if (this.window.size < 1024 || this.window.has(address)) this.window.set(address, (this.window.get(address) ?? 0) + 1);
    this.maybeReport();
  }

  private refill(b: Bucket): void {
    const t = this.now();
    b.tokens = Math.min(this.opts.burst, b.tokens + (Math.max(0, t - b.last) / 1000) * this.opts.failuresPerSec);
    b.last = t;
  }

  private maybeReport(): void {
    const t = this.now();
    if (t - this.windowStart < this.opts.logIntervalMs) return;
    if (this.window.size > 0 || this.refusedInWindow > 0) {
      let top = { address: '', failures: 0 };
      let failures = 0;
      for (const [address, n] of this.window) {
        failures += n;
        if (n > top.failures) top = { address, failures: n };
      }
      this.report({ failures, refused: this.refusedInWindow, addresses: this.window.size, top });
    }
    this.window = new Map();
    this.refusedInWindow = 0;
    this.windowStart = t;
  }
}
