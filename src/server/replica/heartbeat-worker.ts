// The replica's heartbeat, in a thread of its own with a PostgreSQL connection of its own. Why a
// thread: a replica's event loop can be busy for seconds at a time (10,000 peers connecting at
// once, each a WebSocket upgrade, a key proof and store queries), and a heartbeat timer on that
// loop fired 2.6 s late in the bench on a machine at load 7; at load 12-14 that was enough for the
// other replicas to declare a live replica dead. Here nothing else runs: the beat is written when
// it is due, and what the replica itself cannot do while its loop is busy (serve peers) does not
// make it dead. Why a connection of its own: a beat never waits behind the bus's NOTIFY batches.
//
// Each beat writes our row and reads every row (ages by the database's clock) and reports both to
// the replica (replica.ts), which judges the others (liveness.ts). This thread judges only itself:
// when no beat has been written for as long as the others wait minus one interval, it tells the
// replica to stop serving (OwnBeat), before the others can call it dead.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { OwnBeat, type LivenessOptions } from './liveness.js';

export interface HeartbeatConfig {
  readonly databaseUrl: string;
  readonly id: string;
  readonly applicationName: string;
  readonly liveness: LivenessOptions;
  /** Connect and query timeout (ms). */
  readonly timeoutMs: number;
}

/** A row of the heartbeat table as one reading saw it. */
export interface BeatRow {
  readonly id: string;
  readonly meshUrl: string;
  /** Age of its heartbeat by the database's clock (ms). */
  readonly ageMs: number;
}

export type HeartbeatReport =
  /** A beat was written: sent at `sentAt` (local clock), stamped `atMs` (the database's), then everyone's rows. */
  | { readonly kind: 'beat'; readonly sentAt: number; readonly atMs: number; readonly rows: readonly BeatRow[]; readonly timerLateMs: number; readonly previousBeatMs: number }
  /** A beat failed; not yet for long enough to give up. */
  | { readonly kind: 'failed'; readonly error: string }
  /** Stop serving: no beat written for too long, our row is gone, or the connection broke. */
  | { readonly kind: 'lost'; readonly reason: string };

const UPDATE = 'UPDATE traverse_replicas SET heartbeat_at = now() WHERE id = $1 RETURNING (extract(epoch from heartbeat_at) * 1000)::float8 AS at_ms';
const READ = 'SELECT id, mesh_url, (extract(epoch from (now() - heartbeat_at)) * 1000)::float8 AS age_ms FROM traverse_replicas';

async function main(config: HeartbeatConfig, port: NonNullable<typeof parentPort>): Promise<void> {
  const report = (r: HeartbeatReport): void => port.postMessage(r);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const lost = (reason: string): void => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    report({ kind: 'lost', reason });
    void client.end().catch(() => undefined);
  };
  const client = new pg.Client({
    connectionString: config.databaseUrl,
    connectionTimeoutMillis: config.timeoutMs,
    query_timeout: config.timeoutMs,
    application_name: config.applicationName,
  });
  client.on('error', (err) => lost(`database connection failed: ${err.message}`));
  client.on('end', () => lost('database connection closed'));
  port.on('message', (m) => {
    if (m !== 'stop') return;
    stopped = true;
    clearTimeout(timer);
    client.end().finally(() => port.close());
  });
  try {
    await client.connect();
    // Like the bus's statements, a heartbeat need not wait for the disk (replica.ts says why).
    await client.query('SET synchronous_commit TO off');
  } catch (err) {
    return lost(`database connection failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const own = new OwnBeat(Date.now(), config.liveness);
  let previousBeatMs = 0;

  const beat = async (timerLateMs: number): Promise<void> => {
    const sentAt = Date.now();
    try {
      const wrote = await client.query<{ at_ms: number }>(UPDATE, [config.id]);
      if (!wrote.rows[0]) return lost('this replica was removed from the heartbeat table (declared dead)');
      own.succeeded(sentAt);
      const rows = await client.query<{ id: string; mesh_url: string; age_ms: number }>(READ);
      report({ kind: 'beat', sentAt, atMs: wrote.rows[0].at_ms, rows: rows.rows.map((r) => ({ id: r.id, meshUrl: r.mesh_url, ageMs: r.age_ms })), timerLateMs, previousBeatMs });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (own.lost(Date.now())) lost(`no heartbeat written for ${own.silentMs(Date.now())} ms: ${error}`);
      else report({ kind: 'failed', error });
    }
  };

  // Beats are timed from the start of the previous one; one that took longer than the interval
  // is followed at once (never skipped, which made a 3 s statement look like 6 s of silence).
  const schedule = (delayMs: number): void => {
    if (stopped) return;
    const due = Date.now() + Math.max(0, delayMs);
    timer = setTimeout(() => {
      const started = Date.now();
      void beat(started - due).finally(() => {
        previousBeatMs = Date.now() - started;
        schedule(config.liveness.intervalMs - previousBeatMs);
      });
    }, Math.max(0, delayMs));
  };
  await beat(0);
  schedule(config.liveness.intervalMs - previousBeatMs);
}

if (parentPort) void main(workerData as HeartbeatConfig, parentPort);
