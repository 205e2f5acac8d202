// Connection and path history, written in batches behind the peers' backs. A peer's connect never
// waits for its history row, and a storm of connects (10,000 peers coming back to a replica) is a
// few statements of a thousand rows rather than 10,000 inserts competing with authentication for
// the database's pool, where they used to wait past the pool's timeout and be lost.
//
// One batch is in flight at a time; what arrives meanwhile queues (bounded: beyond the bound rows
// are dropped and counted, since memory must not grow with a database that stopped answering).
// A batch the database refused is written again after a pause (the store writes a batch all or
// nothing), a few times, then dropped and counted. At shutdown (finish()) a refused batch is not
// tried again, and the rows behind it are dropped with it: with the database gone, each attempt
// can wait out the pool's connect timeout, and a replica's last disconnects are many batches.
import type { Path } from '../coordination/protocol.js';
import type { HistoryBatch, Store } from './store/store.js';

export interface HistoryOptions {
  /** Rows waiting beyond which new ones are dropped (default 100,000: about 10 MB). */
  readonly maxQueued?: number;
  /** Rows in one batch (default 1000). */
  readonly maxBatch?: number;
  /** Attempts at one batch before it is dropped, and the pause between them (default 5, 1 s). */
  readonly attempts?: number;
  readonly retryMs?: number;
}

export type HistoryKind = 'connect' | 'disconnect' | 'path';

/** A connection's record, as the server keeps it until the connection ends. */
export interface ConnectionRecordRef {
  /** The row's id once written; null before, and for good if it was dropped. */
  id: number | null;
  state: 'queued' | 'written' | 'dropped';
}

type Entry =
  | { readonly kind: 'connect'; readonly ref: ConnectionRecordRef; readonly row: HistoryBatch['connects'][number] }
  | { readonly kind: 'disconnect'; readonly ref: ConnectionRecordRef; readonly at: number; readonly reason: string }
  | { readonly kind: 'path'; readonly row: HistoryBatch['paths'][number] };

export class HistoryWriter {
  private queue: Entry[] = [];
  private writing: Promise<void> | null = null;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly attempts: number;
  private readonly retryMs: number;
  /** Shutting down (finish()): no retries, and nothing more after a refusal. */
  private finishing = false;

  constructor(
    private readonly store: Pick<Store, 'recordHistory'>,
    /** Rows that could not be written, by kind, and why (a metric and a log line). */
    private readonly dropped: (kind: HistoryKind, rows: number, why: string) => void,
    options: HistoryOptions = {},
  ) {
    this.maxQueued = options.maxQueued ?? 100_000;
    this.maxBatch = options.maxBatch ?? 1000;
    this.attempts = options.attempts ?? 5;
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Rows waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  connected(identityId: number, at: number, remote: string | null, replica: string): ConnectionRecordRef {
    const ref: ConnectionRecordRef = { id: null, state: 'queued' };
    if (!this.enqueue({ kind: 'connect', ref, row: { identityId, at, remote, replica } })) ref.state = 'dropped';
    return ref;
  }

  disconnected(ref: ConnectionRecordRef, at: number, reason: string): void {
    if (ref.state === 'dropped') return; // nothing to end
    this.enqueue({ kind: 'disconnect', ref, at, reason });
  }

  path(reporterId: number, peerId: number, path: Path, at: number): void {
    this.enqueue({ kind: 'path', row: { reporterId, peerId, path, at } });
  }

  /** Resolves once everything queued so far is written (or dropped). */
  async drain(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /**
   * For a shutdown: writes what is queued, but gives up at the first batch the database refuses,
   * dropping (and counting) it and everything behind it.
   */
  async finish(): Promise<void> {
    this.finishing = true;
    await this.drain();
  }

  private enqueue(e: Entry): boolean {
    if (this.queue.length >= this.maxQueued) {
      this.dropped(e.kind, 1, `more than ${this.maxQueued} history rows waiting for the database`);
      return false;
    }
    this.queue.push(e);
    this.startWriting();
    return true;
  }

  private startWriting(): void {
    this.writing ??= this.writeAll().finally(() => {
      this.writing = null;
      // Queued between writeAll's last look and now (it saw the writer still running): go again.
      if (this.queue.length > 0) this.startWriting();
    });
  }

  private async writeAll(): Promise<void> {
    // Let the rest of this turn's events queue up first: they leave in the same batch.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const entries = this.take();
      if (entries.length === 0) continue; // only ends of dropped records were left
      const refused = await this.write(entries);
      if (refused !== null && this.finishing) this.dropRest(refused);
    }
  }

  /** Drops everything still queued, counted by kind (finish() after a refusal). */
  private dropRest(why: string): void {
    const counts = { connect: 0, disconnect: 0, path: 0 };
    for (const e of this.queue) {
      if (e.kind === 'connect') e.ref.state = 'dropped';
      // The end of a dropped record has no row to end, and was never counted as one.
      if (e.kind === 'disconnect' && e.ref.state === 'dropped') continue;
      counts[e.kind]++;
    }
    this.queue = [];
    for (const kind of ['connect', 'disconnect', 'path'] as const) if (counts[kind] > 0) this.dropped(kind, counts[kind], `shutting down, and the database refused a batch: ${why}`);
  }

  /**
   * The next batch, in order. It stops before the end of a connection whose record is in the
   * same batch (its id is known only once that batch is written: the next batch ends it).
   */
  private take(): Entry[] {
    const out: Entry[] = [];
    let i = 0;
    for (; i < this.queue.length && out.length < this.maxBatch; i++) {
      const e = this.queue[i]!;
      // Still queued, its record is in this batch (batches leave in order, one at a time).
      if (e.kind === 'disconnect' && e.ref.state === 'queued' && out.length > 0) break;
      if (e.kind === 'disconnect' && e.ref.state === 'dropped') continue;
      out.push(e);
    }
    this.queue.splice(0, i); // in place: a backlog is not copied whole for every batch
    return out;
  }

  /** Writes one batch: null once written, else why the database refused it (its rows dropped and counted). */
  private async write(entries: Entry[]): Promise<string | null> {
    const connects = entries.filter((e): e is Extract<Entry, { kind: 'connect' }> => e.kind === 'connect');
    const batch: HistoryBatch = {
      connects: connects.map((e) => e.row),
      disconnects: entries.flatMap((e) => (e.kind === 'disconnect' && e.ref.id !== null ? [{ id: e.ref.id, at: e.at, reason: e.reason }] : [])),
      paths: entries.flatMap((e) => (e.kind === 'path' ? [e.row] : [])),
    };
    let why = '';
    let attempt = 1;
    for (; ; attempt++) {
      try {
        const ids = await this.store.recordHistory(batch);
        connects.forEach((e, i) => {
          e.ref.id = ids[i] ?? null;
          e.ref.state = 'written';
        });
        return null;
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
        if (attempt >= this.attempts || this.finishing) break;
        await new Promise((r) => setTimeout(r, this.retryMs));
      }
    }
    for (const e of connects) e.ref.state = 'dropped';
    const counts = { connect: batch.connects.length, disconnect: batch.disconnects.length, path: batch.paths.length };
    const times = attempt === 1 ? 'once' : `${attempt} times`;
    for (const kind of ['connect', 'disconnect', 'path'] as const) if (counts[kind] > 0) this.dropped(kind, counts[kind], `the database refused the batch ${times}: ${why}`);
    return why;
  }
}
