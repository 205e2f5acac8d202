// The loop both keepers run (keeper.ts: the IPv4 port mapping; pinhole.ts: the IPv6 pinhole): a
// tick that asks the renewal schedule what is due and does it, one step at a time. A step asked
// for while one runs (a network change, a gateway's announcement) runs right after it, not never.
import type { Logger } from '../log/logger.js';
import { RenewalSchedule, type ScheduleOptions } from './schedule.js';

export interface RenewalLoopOptions {
  readonly now: () => number;
  readonly log: Logger;
  /** What a failed step is called in the debug log. */
  readonly what: string;
  readonly schedule?: ScheduleOptions;
  /** How often the schedule is looked at (ms; default 1000). */
  readonly tickMs?: number;
  /** Nothing is done before this long after the start (ms; default 0: the first step now). */
  readonly startAfterMs?: number;
  /** What is held ran out: forget it. */
  readonly expired: () => void;
  /** Ask the gateway (again): the schedule says map or renew. */
  readonly map: () => Promise<void>;
  /** Ask the gateway's epoch: a restart makes the schedule map again. */
  readonly checkEpoch: () => Promise<void>;
}

export class RenewalLoop {
  readonly schedule: RenewalSchedule;
  private readonly startAt: number;
  private readonly timer: NodeJS.Timeout;
  private startTimer: NodeJS.Timeout | null = null;
  private busy = false;
  private again = false;
  private stopped = false;

  constructor(private readonly o: RenewalLoopOptions) {
    this.schedule = new RenewalSchedule(o.now(), o.schedule);
    this.startAt = o.now() + (o.startAfterMs ?? 0);
    this.timer = setInterval(() => void this.step(), o.tickMs ?? 1000);
    this.timer.unref();
    if (o.startAfterMs) {
      this.startTimer = setTimeout(() => void this.step(), o.startAfterMs);
      this.startTimer.unref();
    } else {
      // After the constructor returns: the owner's map() may use the loop (its schedule) at once.
      queueMicrotask(() => void this.step());
    }
  }

  /** Whether the deferred start (startAfterMs) is still ahead. */
  get deferred(): boolean {
    return this.o.now() < this.startAt;
  }

  /** Does what is due now (or right after the step in progress). */
  async step(): Promise<void> {
    if (this.stopped || this.deferred) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.again = false;
    try {
      const now = this.o.now();
      if (this.schedule.expired(now)) this.o.expired();
      const action = this.schedule.due(now);
      if (action === 'map') await this.o.map();
      else if (action === 'check-epoch') await this.o.checkEpoch();
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, `${this.o.what} step failed`);
    } finally {
      this.busy = false;
      if (this.again) void this.step();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.startTimer) clearTimeout(this.startTimer);
  }
}
