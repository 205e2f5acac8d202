// Control messages ride sealed disco datagrams, which may be lost: a request (stream-open,
// carrier, tcp-lane) is sent at once and again every `everyMs` until its answer stops it, or until
// `deadlineMs` have passed since the first send; then `onDeadline` runs, once.
//
// The side that answers keeps its answer, so a resent request is answered again, the same way.

export class Resend {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly send: () => void,
    private readonly everyMs: number,
    private readonly deadlineMs: number,
    private readonly onDeadline: () => void,
  ) {}

  /** Sends now, and keeps resending until stopped or the deadline. */
  start(): this {
    if (this.timer) return this;
    const started = Date.now();
    const tick = (): void => {
      if (Date.now() - started > this.deadlineMs) {
        this.stop();
        this.onDeadline();
        return;
      }
      this.send();
    };
    this.timer = setInterval(tick, this.everyMs);
    tick();
    return this;
  }

  /** The answer came (or the request no longer matters): no more resends, no deadline. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
