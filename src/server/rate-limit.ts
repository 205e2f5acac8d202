// A token bucket per connection: `ratePerSec` sustained, `burst` at once. Clock-injected so
// tests need no sleeps.
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `cost` tokens if available; false means the caller is over its limit. */
  take(now: number, cost = 1): boolean {
    if (this.ratePerSec <= 0) return true; // 0 disables the limit
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSec);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}
