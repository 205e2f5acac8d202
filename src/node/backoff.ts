// Reconnect delays: exponential with "full jitter" (AWS architecture blog), so that peers cut
// off by one server restart do not all come back in the same millisecond.
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 30_000 };

/** The delay before reconnect attempt `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  // Never zero: a floor of half the base keeps a tight loop impossible.
  return Math.max(opts.baseMs / 2, Math.floor(random() * ceiling));
}
