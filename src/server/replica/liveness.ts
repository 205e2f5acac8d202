// Which replicas are alive, from their heartbeats. Pure and clock-injected: the caller feeds it
// what the database said (each replica's heartbeat age, measured by the database's own clock so
// that skew between machines does not count) and acts on the verdicts it returns.
//
// The rule is Coder's pgcoord's: a replica beats every `intervalMs` (2 s); one that has missed
// `missedBeats` (3) in a row is dead, and the peers it held are marked lost (not dropped: their
// tunnel peers keep trying the paths they had). A dead replica that beats again is alive again
// and must republish its state; the caller asks it to.
//
// Only the database's timestamps count, never how late our own queries came back. And a replica
// is not blamed for a stall it shared with us: when our own last beats, as the database stamped
// them, came further apart than the interval (the database or the machine under both of us was
// stalled), the others get as much longer before they are dead, at most `deadAfterMs` more. A
// replica that is really gone is still dead within twice `deadAfterMs`.

export interface LivenessOptions {
  /** How often every replica writes its heartbeat (ms). */
  readonly intervalMs: number;
  /** Beats a replica may miss before it is dead. */
  readonly missedBeats: number;
}

export const DEFAULT_LIVENESS: LivenessOptions = { intervalMs: 2000, missedBeats: 3 };

/** One replica as the heartbeat table shows it. */
export interface Beat {
  readonly id: string;
  /** How long ago its last heartbeat was written, by the database's clock (ms). */
  readonly ageMs: number;
  /** How other replicas reach its relay (`--mesh-url`). */
  readonly meshUrl: string;
}

export type LivenessChange =
  | { readonly kind: 'joined'; readonly id: string; readonly meshUrl: string }
  | { readonly kind: 'dead'; readonly id: string; readonly silentMs: number }
  /** Gone from the table without being seen dead: it said goodbye, or another replica removed it. */
  | { readonly kind: 'left'; readonly id: string };

/** The age beyond which a replica is dead. */
export function deadAfterMs(o: LivenessOptions): number {
  return o.intervalMs * o.missedBeats;
}

/**
 * Tracks the other replicas. `observe` takes one reading of the heartbeat table and returns what
 * changed since the previous reading; it never reports the replica itself.
 */
export class Liveness {
  private readonly alive = new Map<string, string>();
  private readonly dead = new Set<string>();
  /** Our own latest heartbeats, as the database stamped them (ms, its clock), oldest first. */
  private readonly ownBeats: number[] = [];

  constructor(
    private readonly self: string,
    private readonly options: LivenessOptions = DEFAULT_LIVENESS,
  ) {}

  /** The replicas alive at the last reading, with their mesh URLs. */
  get peers(): ReadonlyMap<string, string> {
    return this.alive;
  }

  isAlive(id: string): boolean {
    return this.alive.has(id);
  }

  /** Our own heartbeat was written, stamped `atMs` by the database's clock. */
  beat(atMs: number): void {
    this.ownBeats.push(atMs);
    // The stalls that matter are those within the last `deadAfterMs`: a few beats back.
    if (this.ownBeats.length > this.options.missedBeats + 1) this.ownBeats.shift();
  }

  /**
   * How much longer than the interval our own recent beats took to be stamped: a stall of the
   * database or of the machine under both of us, which the others' beats went through too.
   */
  sharedStallMs(): number {
    let worst = 0;
    for (let i = 1; i < this.ownBeats.length; i++) worst = Math.max(worst, this.ownBeats[i]! - this.ownBeats[i - 1]! - this.options.intervalMs);
    return Math.min(worst, deadAfterMs(this.options));
  }

  observe(beats: readonly Beat[]): LivenessChange[] {
    const limit = deadAfterMs(this.options) + this.sharedStallMs();
    const changes: LivenessChange[] = [];
    const seen = new Set<string>();
    for (const b of beats) {
      if (b.id === this.self) continue;
      seen.add(b.id);
      const fresh = b.ageMs <= limit;
      if (fresh && !this.alive.has(b.id)) {
        this.dead.delete(b.id);
        this.alive.set(b.id, b.meshUrl);
        changes.push({ kind: 'joined', id: b.id, meshUrl: b.meshUrl });
      } else if (fresh) {
        this.alive.set(b.id, b.meshUrl);
      } else if (this.alive.delete(b.id) || !this.dead.has(b.id)) {
        this.dead.add(b.id);
        changes.push({ kind: 'dead', id: b.id, silentMs: b.ageMs });
      }
    }
    for (const id of [...this.alive.keys()]) {
      if (seen.has(id)) continue;
      this.alive.delete(id);
      changes.push({ kind: 'left', id });
    }
    for (const id of [...this.dead]) if (!seen.has(id)) this.dead.delete(id);
    return changes;
  }

  /** A replica said goodbye on the bus: forget it at once rather than wait for its row to go. */
  forget(id: string): boolean {
    this.dead.delete(id);
    return this.alive.delete(id);
  }
}

/**
 * The replica's own hold on the database: it is attached while its heartbeats succeed. One that
 * has not written a heartbeat for as long as its peers wait before declaring it dead must stop
 * serving (close its peers' connections) so that nobody believes two replicas hold the same node.
 */
export class OwnBeat {
  private lastOk: number;

  constructor(
    now: number,
    private readonly options: LivenessOptions = DEFAULT_LIVENESS,
  ) {
    this.lastOk = now;
  }

  /**
   * A heartbeat was written; `sentAt` is when it was sent (local clock). The database stamped it
   * no earlier than that, so counting from the send, never from the late answer, we stop serving
   * before the others' clock can say we are dead, however long the answer took.
   */
  succeeded(sentAt: number): void {
    this.lastOk = Math.max(this.lastOk, sentAt);
  }

  /** When the last heartbeat that was written was sent. */
  get lastBeat(): number {
    return this.lastOk;
  }

  silentMs(now: number): number {
    return now - this.lastOk;
  }

  /** Whether this replica must consider the database lost. */
  lost(now: number): boolean {
    // Stop one interval before the others would declare us dead: our peers are gone from us
    // before they are marked lost elsewhere, never after.
    return now - this.lastOk >= deadAfterMs(this.options) - this.options.intervalMs;
  }
}
