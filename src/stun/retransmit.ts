// The client transaction's retransmission schedule over UDP (RFC 8489 section 6.2.1): the request
// is sent at 0, RTO, 3*RTO, 7*RTO, ... (the interval doubles), Rc times in all; after the last one
// the client waits Rm*RTO for an answer. With the defaults (RTO 500 ms, Rc 7, Rm 16) the
// transaction gives up after 39.5 s. Pure and clock-injected: the caller owns the timers.

export interface RetransmitOptions {
  readonly rtoMs: number;
  /** Total number of transmissions (Rc). Default 7. */
  readonly rc?: number;
  /** Multiple of RTO to wait after the last transmission (Rm). Default 16. */
  readonly rm?: number;
  /** Give up at start + this many ms even if the schedule would go on (a caller's total budget). */
  readonly deadlineMs?: number;
}

export type RetransmitStep =
  | { readonly action: 'send'; readonly nextAt: number }
  | { readonly action: 'wait'; readonly nextAt: number }
  | { readonly action: 'timeout' };

export class RetransmitSchedule {
  private sent = 0;
  private nextAt: number;
  private readonly giveUpAt: number;
  private readonly rc: number;
  private readonly rm: number;
  private readonly rto: number;

  constructor(
    readonly startedAt: number,
    options: RetransmitOptions,
  ) {
    this.rto = options.rtoMs;
    this.rc = options.rc ?? 7;
    this.rm = options.rm ?? 16;
    const scheduleEnd = startedAt + this.rto * ((1 << (this.rc - 1)) - 1) + this.rm * this.rto;
    this.giveUpAt = options.deadlineMs === undefined ? scheduleEnd : Math.min(scheduleEnd, startedAt + options.deadlineMs);
    this.nextAt = startedAt;
  }

  /** How many times the request has been sent. */
  get transmissions(): number {
    return this.sent;
  }

  /** When the transaction will give up if nothing arrives. */
  get deadline(): number {
    return this.giveUpAt;
  }

  /** What to do at `now`: send (again), keep waiting, or give up. */
  step(now: number): RetransmitStep {
    if (now >= this.giveUpAt) return { action: 'timeout' };
    if (now < this.nextAt) return { action: 'wait', nextAt: this.nextAt };
    this.sent++;
    if (this.sent < this.rc) {
      // The next transmission is RTO * 2^(sent-1) after this one.
      this.nextAt = Math.min(this.giveUpAt, this.startedAt + this.rto * ((1 << this.sent) - 1));
    } else {
      this.nextAt = this.giveUpAt;
    }
    return { action: 'send', nextAt: this.nextAt };
  }
}
