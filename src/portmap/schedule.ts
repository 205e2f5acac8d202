// When to ask the gateway again: pure and clock-injected (times in ms, the caller's clock).
//
//   - at start, after a network change, and when the router restarted: map now;
//   - a mapping is renewed at half its lifetime (RFC 6886 section 3.3 suggests renewing in the
//     second half; half leaves room for a lost answer and a retry), and dropped when it expires;
//   - a failed attempt is retried with doubling backoff; with nothing to map with, the gateway is
//     asked a few more times that way (a loaded machine or router can miss a 250 ms probe), then
//     every few minutes (a router may turn it on, or the machine may move);
//   - between renewals the PCP / NAT-PMP epoch is checked now and then: a router that restarted
//     forgot our mapping, and its epoch going back (RFC 6887 section 8.5) says so; a gateway's
//     announcement (announce.ts) brings the renewal forward to now.
export interface ScheduleOptions {
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** With no protocol available, probe again this often. */
  readonly reprobeMs?: number;
  /** Between renewals, check the epoch this often (PCP and NAT-PMP only). */
  readonly epochCheckMs?: number;
}

/** Probes that found nothing retried with the short backoff before the long reprobe interval. */
const QUICK_REPROBES = 3;

export type ScheduleAction = 'map' | 'check-epoch' | null;

interface Held {
  readonly renewAt: number;
  readonly expiresAt: number;
  readonly epochChecks: boolean;
}

/** RFC 6887 section 8.5: has the server lost state since the previous answer? */
export function epochWentBack(prev: { serverS: number; clientMs: number }, cur: { serverS: number; clientMs: number }): boolean {
  if (cur.serverS < prev.serverS - 1) return true;
  const clientDelta = (cur.clientMs - prev.clientMs) / 1000;
  const serverDelta = cur.serverS - prev.serverS;
  return clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16;
}

export class RenewalSchedule {
  private held: Held | null = null;
  private nextMapAt: number;
  private nextCheckAt = Infinity;
  private failures = 0;
  private epoch: { serverS: number; clientMs: number } | null = null;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly reprobeMs: number;
  private readonly epochCheckMs: number;

  constructor(now: number, o: ScheduleOptions = {}) {
    this.nextMapAt = now;
    this.retryMinMs = o.retryMinMs ?? 2000;
    this.retryMaxMs = o.retryMaxMs ?? 5 * 60_000;
    this.reprobeMs = o.reprobeMs ?? 5 * 60_000;
    this.epochCheckMs = o.epochCheckMs ?? 60_000;
  }

  /** What to do now, if anything. */
  due(now: number): ScheduleAction {
    if (now >= this.nextMapAt) return 'map';
    if (this.held && now >= this.nextCheckAt) return 'check-epoch';
    return null;
  }

  /** When `due` will next say something (for a timer), in the caller's clock. */
  nextAt(): number {
    return Math.min(this.nextMapAt, this.held ? this.nextCheckAt : Infinity);
  }

  /** A mapping was made or renewed for `lifetimeS`; `epochS` from PCP / NAT-PMP (null for UPnP). */
  mapped(now: number, lifetimeS: number, epochS: number | null): void {
    const lifeMs = Math.max(1, lifetimeS) * 1000;
    this.held = { renewAt: now + lifeMs / 2, expiresAt: now + lifeMs, epochChecks: epochS !== null };
    this.nextMapAt = this.held.renewAt;
    this.nextCheckAt = epochS !== null ? now + Math.min(this.epochCheckMs, lifeMs / 4) : Infinity;
    this.failures = 0;
    this.epoch = epochS !== null ? { serverS: epochS, clientMs: now } : null;
  }

  /**
   * An attempt failed. `nothingAvailable`: no protocol answered at all, so wait the long reprobe
   * interval. A mapping still held stays until it expires (`expired`).
   */
  failed(now: number, nothingAvailable: boolean): void {
    this.failures++;
    const backoff = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** (this.failures - 1));
    this.nextMapAt = now + (nothingAvailable && !this.held && this.failures > QUICK_REPROBES ? this.reprobeMs : backoff);
  }

  /**
   * An epoch seen between renewals. Returns true when the router restarted: the mapping is gone,
   * map again now.
   */
  epochSeen(now: number, epochS: number): boolean {
    const cur = { serverS: epochS, clientMs: now };
    const restarted = this.epoch !== null && epochWentBack(this.epoch, cur);
    this.epoch = cur;
    if (restarted) {
      this.held = null;
      this.nextMapAt = now;
      this.failures = 0;
    } else this.nextCheckAt = now + this.epochCheckMs;
    return restarted;
  }

  /**
   * The gateway announced a restart or a new address (announce.ts): map (renew) now. Not just an
   * epoch check: right after a restart the epochs before and after can be too close to tell
   * (RFC 6887 section 8.5 allows seconds of slack), and a renewal is one request either way.
   */
  announced(now: number): void {
    this.nextMapAt = now;
    this.failures = 0;
  }

  /** The epoch check got no answer: try again later (the renewal will tell). */
  epochUnknown(now: number): void {
    this.nextCheckAt = now + this.epochCheckMs;
  }

  /** The network changed: whatever we held belongs to the old one; map afresh now. */
  networkChanged(now: number): void {
    this.held = null;
    this.epoch = null;
    this.failures = 0;
    this.nextMapAt = now;
    this.nextCheckAt = Infinity;
  }

  /** Whether the held mapping has run out (renewals kept failing); drops it if so. */
  expired(now: number): boolean {
    if (!this.held || now < this.held.expiresAt) return false;
    this.held = null;
    this.nextCheckAt = Infinity;
    return true;
  }

  get holding(): boolean {
    return this.held !== null;
  }
}
