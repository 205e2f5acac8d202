// Which coordination server a peer tries next when it knows several (--server URL1,URL2, or a
// DNS name with several addresses: each address counts as a server), and how long it waits.
//
// Each server keeps its own run of consecutive failures and the time before which it is not
// tried again (backoff.ts's exponential delay with full jitter). The next server is the one that
// may be tried soonest; among equals, the one after the last tried in list order. So a peer
// whose server goes away moves to another one at once (after a short jitter that spreads the
// peers of a dead server over a fraction of a second), and only when every server has failed
// does it wait, for the shortest of their backoffs. With a single server this is exactly the
// single-server backoff: delays of backoffDelay(0), backoffDelay(1), ...
//
// Pure and clock-injected: the caller says what happened and when, and gets a decision back.
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.js';

interface TargetState {
  /** Consecutive failures since the last connection that held. */
  failures: number;
  /** Not to be tried before this time (ms). */
  retryAt: number;
}

export interface Choice {
  /** The server to try, as given to setTargets. */
  readonly target: string;
  /** How long to wait before trying it (ms). */
  readonly delayMs: number;
}

export class ServerChoice {
  private targets: string[] = [];
  private readonly state = new Map<string, TargetState>();
  /** Index in `targets` of the last server tried; -1 before the first. */
  private last = -1;

  constructor(
    targets: readonly string[],
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    this.setTargets(targets);
  }

  /**
   * Replaces the list (a fresh DNS answer, say), in order. A server still in the list keeps its
   * failures; a new one starts clean; one that left is forgotten.
   */
  setTargets(targets: readonly string[]): void {
    if (targets.length === 0) throw new RangeError('no servers to choose from');
    const lastTarget = this.targets[this.last];
    this.targets = [...new Set(targets)];
    for (const t of [...this.state.keys()]) if (!this.targets.includes(t)) this.state.delete(t);
    for (const t of this.targets) if (!this.state.has(t)) this.state.set(t, { failures: 0, retryAt: 0 });
    this.last = lastTarget === undefined ? -1 : this.targets.indexOf(lastTarget);
  }

  get list(): readonly string[] {
    return this.targets;
  }

  /**
   * The server to try next and when. The very first choice is the first server, at once;
   * afterwards, a server that may be tried now is tried after a jitter of up to half the base
   * delay, so that the peers of one server that went away do not all arrive in the same instant.
   */
  next(now: number, first = false): Choice {
    let best = -1;
    let bestAt = Infinity;
    for (let i = 1; i <= this.targets.length; i++) {
      const idx = (this.last + i) % this.targets.length;
      const at = this.state.get(this.targets[idx]!)!.retryAt;
      if (at < bestAt) {
        best = idx;
        bestAt = at;
      }
    }
    this.last = best;
    const target = this.targets[best]!;
    if (first) return { target, delayMs: Math.max(0, bestAt - now) };
    const jitter = Math.floor(this.random() * (this.backoff.baseMs / 2));
    return { target, delayMs: Math.max(bestAt - now, jitter) };
  }

  /** A try failed or a connection ended: this server waits out its next backoff. */
  failed(target: string, now: number): void {
    const s = this.state.get(target);
    if (!s) return;
    s.retryAt = now + backoffDelay(s.failures, this.backoff, this.random);
    s.failures++;
  }

  /** A connection to this server held long enough to trust it again: its backoff starts over. */
  held(target: string): void {
    const s = this.state.get(target);
    if (s) s.failures = 0;
  }

  /** Consecutive failures of a server (for tests and logs). */
  failuresOf(target: string): number {
    return this.state.get(target)?.failures ?? 0;
  }
}
