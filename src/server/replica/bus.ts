// The bus between replicas: PostgreSQL LISTEN/NOTIFY on one channel. Chosen over polling a table
// because a notification reaches every listening replica within a millisecond or two of the
// commit, in commit order, at no cost while nothing happens; polling pays its interval in latency
// (or a query per replica per few milliseconds) all the time. README "Replicas" has the figures.
//
// Events are batched: while one NOTIFY is in flight the next events queue up and leave together,
// so a burst of node updates costs a few round trips, not one each. A NOTIFY payload is limited to
// 8000 bytes; a batch that cannot be split below that (one huge event) goes through a table and the
// notification carries only its row id.
//
// A notification is only delivered to connections listening when it commits; a replica that loses
// its listening connection has missed events and must treat that as losing the database (replica.ts
// does: it closes its peers and comes back as a new replica that everyone resyncs).
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { eventBatch, type EventBatch, type ReplicaEvent } from './events.js';

export const CHANNEL = 'traverse_replicas';
/** NOTIFY's limit is 8000 bytes; leave room for the envelope. */
const MAX_NOTIFY_BYTES = 7800;
/** Notifications sent in one statement (about 250 KB of payload at most). */
const NOTIFIES_PER_STATEMENT = 32;
/**
 * How long applying a run of inbound notifications may hold the event loop before it lets the
 * replica's own connections in. A resync is every node of another replica at once (thousands of
 * attach, node and tunnel events, each a message to a tunnel peer); applied in one go it stalls
 * every live update on this replica for a second or more on a busy machine.
 */
const APPLY_SLICE_MS = 10;
/** Queued events beyond which the replica is too far behind the database to be trusted. */
export const MAX_QUEUED_EVENTS = 200_000;

export class BusOverflow extends Error {
  constructor() {
    super(`more than ${MAX_QUEUED_EVENTS} replica events waiting for the database`);
  }
}

/**
 * One connection's queries, one after another: the bus and the heartbeat share the connection
 * (NOTIFYs from one connection arrive in the order they were sent), and pg wants no overlap.
 */
export class SerialClient {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly client: pg.Client) {}

  query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    const run = this.tail.then(() => this.client.query<R>(text, params));
    this.tail = run.catch(() => undefined);
    return run;
  }
}

export class PgBus {
  private queue: ReplicaEvent[] = [];
  private flushing = false;
  /** Inbound batches are applied one after another, also when one has to be fetched first. */
  private inbound: Promise<void> = Promise.resolve();
  /** Notifications received and not yet applied, and when the current run of applying them began. */
  private backlog = 0;
  private sliceStart = 0;
  private closed = false;
  private readonly ownPrefix: string;

  constructor(
    private readonly writer: SerialClient,
    private readonly self: string,
    private readonly onBatch: (batch: EventBatch) => void,
    private readonly onError: (err: unknown) => void,
    private readonly onDropped: (why: string) => void = () => {},
  ) {
    this.ownPrefix = `{"r":"${self}"`;
  }

  /** Sends an event to every other replica. Never waits; failures go to onError. */
  publish(e: ReplicaEvent): void {
    this.queue.push(e);
    if (this.queue.length > MAX_QUEUED_EVENTS) {
      this.queue = [];
      this.onError(new BusOverflow());
      return;
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Resolves once everything published so far is in the database. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) await this.flush();
      else await new Promise((r) => setTimeout(r, 2));
    }
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const events = this.queue;
        this.queue = [];
        await this.send(pack(this.self, events));
      }
    } catch (err) {
      this.queue = [];
      this.onError(err);
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Sends the payloads in order, as few statements as possible: several pg_notify calls in one
   * statement are one round trip (delivered in the order called), so a slow database costs the
   * bus latency, not throughput. (PostgreSQL folds identical payloads of one transaction into
   * one: only a repeated batch of idempotent events could be identical.) An oversized payload goes
   * through the table.
   */
  private async send(payloads: readonly string[]): Promise<void> {
    let run: string[] = [];
    const flushRun = async (): Promise<void> => {
      if (run.length === 0) return;
      const calls = run.map((_, i) => `pg_notify($1, $${i + 2})`).join(', ');
      await this.writer.query(`SELECT ${calls}`, [CHANNEL, ...run]);
      run = [];
    };
    for (const payload of payloads) {
      if (Buffer.byteLength(payload) <= MAX_NOTIFY_BYTES) {
        run.push(payload);
        if (run.length >= NOTIFIES_PER_STATEMENT) await flushRun();
        continue;
      }
      await flushRun();
      const row = await this.writer.query<{ id: string }>('INSERT INTO traverse_replica_events (payload) VALUES ($1) RETURNING id', [payload]);
      await this.writer.query('SELECT pg_notify($1, $2)', [CHANNEL, `@${row.rows[0]!.id}`]);
    }
    await flushRun();
  }

  /** One notification from the listening connection. */
  received(payload: string): void {
    // Our own notifications come back to us too: skip them before paying for a parse (pack()
    // writes this exact prefix).
    if (payload.startsWith(this.ownPrefix)) return;
    if (this.backlog++ === 0) this.sliceStart = performance.now();
    this.inbound = this.inbound.then(async () => {
      try {
        if (performance.now() - this.sliceStart >= APPLY_SLICE_MS) {
          // In order still: the next notifications wait on this one's promise.
          await new Promise((r) => setImmediate(r));
          this.sliceStart = performance.now();
        }
        if (!this.closed) await this.apply(payload);
      } finally {
        this.backlog--;
      }
    }).catch((err: unknown) => this.onError(err));
  }

  /** Stops applying what is still queued: the connection it came on is gone (replica.ts starts over). */
  close(): void {
    this.closed = true;
  }

  private async apply(payload: string): Promise<void> {
    let text = payload;
    if (payload.startsWith('@')) {
      const row = await this.writer.query<{ payload: string }>('SELECT payload FROM traverse_replica_events WHERE id = $1', [payload.slice(1)]);
      if (!row.rows[0]) return this.onDropped('event row already pruned');
      text = row.rows[0].payload;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.onDropped('notification is not JSON');
    }
    const parsed = eventBatch.safeParse(json);
    if (!parsed.success) return this.onDropped('notification is not an event batch');
    if (parsed.data.r === this.self) return;
    this.onBatch(parsed.data);
  }
}

/**
 * Splits events into batches whose JSON stays under the NOTIFY limit; an event too big for a
 * notification of its own travels alone (through the table).
 */
export function pack(self: string, events: readonly ReplicaEvent[]): string[] {
  const out: string[] = [];
  const head = `{"r":"${self}","e":[`;
  let parts: string[] = [];
  let size = head.length + 2;
  for (const e of events) {
    const text = JSON.stringify(e);
    if (parts.length > 0 && size + text.length + 1 > MAX_NOTIFY_BYTES) {
      out.push(head + parts.join(',') + ']}');
      parts = [];
      size = head.length + 2;
    }
    parts.push(text);
    size += text.length + 1;
  }
  if (parts.length > 0) out.push(head + parts.join(',') + ']}');
  return out;
}
