// Retransmission timeout estimation (RFC 8489 section 6.2.1, with RFC 6298's estimator).
// Pure: the caller measures round-trip times and asks for the next RTO.

export interface RtoOptions {
  /** The RTO before any measurement: 500 ms by RFC 8489's default. */
  readonly initialMs?: number;
  /** A floor, so one lucky sample on loopback does not make retransmissions aggressive. */
  readonly minMs?: number;
  readonly maxMs?: number;
}

export class RtoEstimator {
  private srtt: number | null = null;
  private rttvar = 0;
  private rto: number;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(options: RtoOptions = {}) {
    this.rto = options.initialMs ?? 500;
    this.minMs = options.minMs ?? 100;
    this.maxMs = options.maxMs ?? 3000;
  }

  /** The RTO to start the next transaction with. */
  get current(): number {
    return this.rto;
  }

  /** A smoothed RTT in ms, or null before the first sample. */
  get smoothedRtt(): number | null {
    return this.srtt;
  }

  /**
   * Feeds one RTT sample. By Karn's rule the caller only feeds transactions whose request was
   * sent once: a response to a retransmitted request cannot be matched to one of its copies.
   */
  sample(rttMs: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return;
    if (this.srtt === null) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    this.rto = Math.min(this.maxMs, Math.max(this.minMs, this.srtt + 4 * this.rttvar));
  }
}
