// One replica's membership in the group of `traverse server` processes sharing a PostgreSQL
// database: its heartbeat row, the bus it publishes its nodes' changes on and mirrors the others'
// from, and the relay mesh. The hub calls `changed` for every change to one of its own nodes.
//
// Failure rules (Coder's pgcoord, simplified):
// - every replica writes a heartbeat every 2 s and reads everyone's; one silent for 3 beats is dead
//   and the nodes it held are marked lost here (their tunnel peers keep their paths);
// - a replica that cannot reach the database closes every peer connection (they reconnect to
//   another replica) and refuses new ones until it is back, then comes back under a new id, so
//   nobody mixes what it held before with what it holds after;
// - a clean shutdown says goodbye: the others mark its nodes lost at once, and nothing about them
//   is deleted from the database (history stays; nodes reconnect elsewhere within seconds).
import type { Trust } from '../../net/tls-trust.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { Gauge } from 'prom-client';
import type { Logger } from '../../log/logger.js';
import type { Hub, HubChange } from '../hub.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { PgBus, SerialClient } from './bus.js';
import type { EventBatch } from './events.js';
import { Worker } from 'node:worker_threads';
import type { HeartbeatConfig, HeartbeatReport } from './heartbeat-worker.js';
import { DEFAULT_LIVENESS, Liveness, deadAfterMs, type LivenessChange, type LivenessOptions } from './liveness.js';
import { Mesh } from './mesh.js';
import { Mirror, eventOf, snapshotOf } from './mirror.js';

export interface ReplicationOptions {
  /** postgres://... of the database the replicas share. */
  readonly databaseUrl: string;
  /** How other replicas reach this one's relay mesh: http(s)://host:port (published in the database). */
  readonly meshUrl: string;
  /** The mesh key; absent: the key stored in the database (the first replica creates it). */
  readonly meshKey?: Buffer;
  readonly liveness?: LivenessOptions;
  readonly mesh?: { readonly maxBuffered?: number; readonly bytesPerSec?: number };
  /** The CAs other replicas' https:// mesh URLs are checked against (default: Node's and the system's). */
  readonly trust?: Trust;
}

export interface ReplicaHooks {
  /** The replica lost the database: close every peer connection so the peers go elsewhere. */
  closeAll(reason: string): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS traverse_replicas (
  id text PRIMARY KEY,
  mesh_url text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS traverse_replica_events (
  id bigserial PRIMARY KEY,
  payload text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS traverse_mesh_key (
  id int PRIMARY KEY CHECK (id = 1),
  key bytea NOT NULL
);`;
/** Heartbeats between two removals of stale rows. */
const HOUSEKEEPING_EVERY = 5;
/** Serialises schema creation between replicas starting at once (CREATE ... IF NOT EXISTS races). */
const SCHEMA_LOCK = 0x7472_6176;

interface Connection {
  readonly writer: SerialClient;
  readonly listener: pg.Client;
  /** The heartbeat's thread, with its own connection (heartbeat-worker.ts says why). */
  readonly beat: Worker;
  readonly bus: PgBus;
  readonly id: string;
}

export class Replica {
  private conn: Connection | null = null;
  private readonly liveness: LivenessOptions;
  private live: Liveness;
  private readonly mirror: Mirror;
  private mesh: Mesh | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** When the last beat the heartbeat thread wrote was sent (for the "heartbeat late" warning). */
  private lastBeatSent = 0;
  private beats = 0;
  private stopped = false;
  private leaving = false;
  private meshKey: Buffer | null;

  private constructor(
    private readonly hub: Hub,
    private readonly opts: ReplicationOptions,
    private readonly hooks: ReplicaHooks,
    private readonly log: Logger,
    private readonly metrics: CoordinatorMetrics | undefined,
  ) {
    this.liveness = opts.liveness ?? DEFAULT_LIVENESS;
    this.live = new Liveness('', this.liveness);
    this.meshKey = opts.meshKey ?? null;
    this.mirror = new Mirror(hub, {
      send: (replica, key, frame) => this.mesh?.send(replica, key, frame),
      buffered: (replica) => this.mesh?.buffered(replica) ?? 0,
    });
    if (metrics) this.registerMetrics(metrics);
  }

  /** Gauges read at scrape time: what an operator alerts on (a replica without its database, a lone replica). */
  private registerMetrics(metrics: CoordinatorMetrics): void {
    const registers = [metrics.registry];
    const gauge = (name: string, help: string, read: () => number): Gauge => {
      const g: Gauge = new Gauge({ name, help, registers, collect: () => g.set(read()) });
      return g;
    };
    gauge('traverse_replica_database_attached', '1 while this replica holds the database and serves peers', () => (this.serving ? 1 : 0));
    gauge('traverse_replica_peers_alive', 'Other replicas alive at the last heartbeat reading', () => this.live.peers.size);
    gauge('traverse_replica_mirrored_nodes', "Other replicas' nodes mirrored here", () => this.mirror.size);
  }

  /** Joins the group; throws (with the database's reason) if the database cannot be reached. */
  static async start(hub: Hub, opts: ReplicationOptions, hooks: ReplicaHooks, log: Logger, metrics?: CoordinatorMetrics): Promise<Replica> {
    const r = new Replica(hub, opts, hooks, log, metrics);
    await r.attach();
    // Only to come back after losing the database: the heartbeat itself runs in its own thread.
    r.timer = setInterval(() => void r.tick(), r.liveness.intervalMs);
    r.timer.unref();
    return r;
  }

  /** This replica's id in the heartbeat table, or null while it has no database. */
  get id(): string | null {
    return this.conn?.id ?? null;
  }

  /** Whether the replica may take peer connections (it holds the database). */
  get serving(): boolean {
    return this.conn !== null && !this.stopped;
  }

  /** How the other replicas reach this one's mesh. */
  get meshUrl(): string {
    return this.opts.meshUrl;
  }

  /** The other replicas alive at the last heartbeat reading: id -> mesh URL. */
  get peers(): ReadonlyMap<string, string> {
    return this.live.peers;
  }

  /** Nodes of other replicas mirrored here. */
  get mirrored(): number {
    return this.mirror.size;
  }

  /** Whether the mesh link to `replica` is up (tests and status). */
  meshReady(replica: string): boolean {
    return this.mesh?.ready(replica) ?? false;
  }

  /** From the hub: a change to one of this replica's own nodes. */
  changed(change: HubChange): void {
    // Leaving cleanly, our nodes are not "disconnected" for the others: the goodbye marks them lost.
    if (this.leaving && change.kind === 'detach') return;
    const e = eventOf(change);
    if (e && this.conn) this.conn.bus.publish(e);
  }

  /** An upgrade at the mesh path. */
  handleMeshUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.mesh) return false;
    this.mesh.handleUpgrade(req, socket, head);
    return true;
  }

  private async attach(): Promise<void> {
    const id = randomBytes(8).toString('hex');
    const timeout = this.liveness.intervalMs * 2;
    // application_name lets an operator (and the tests) find a replica's connections in pg_stat_activity.
    const common = { connectionString: this.opts.databaseUrl, connectionTimeoutMillis: timeout, application_name: `traverse-replica-${id}` };
    const writer = new pg.Client({ ...common, query_timeout: timeout });
    const listener = new pg.Client(common);
    // Errors after connecting are handled by lose(); before, by the caller.
    for (const c of [writer, listener]) c.on('error', (err) => this.lose(`database connection failed: ${err.message}`));
    let beat: Worker | undefined;
    let first: HeartbeatReport;
    try {
      await Promise.all([writer.connect(), listener.connect()]);
      // A NOTIFY makes its statement a writing transaction: with synchronous commit each batch of
      // the bus would wait for a WAL flush. Nothing this connection writes needs to survive a
      // database crash (notifications and heartbeats are lost with the database anyway), so its
      // commits do not wait for the disk. (The bench's cluster runs without fsync: it cannot show this.)
      await writer.query('SET synchronous_commit TO off');
      await writer.query('BEGIN');
      await writer.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await writer.query(SCHEMA);
      await writer.query('COMMIT');
      if (!this.meshKey) {
        await writer.query('INSERT INTO traverse_mesh_key (id, key) VALUES (1, $1) ON CONFLICT DO NOTHING', [randomBytes(32)]);
        const row = await writer.query<{ key: Buffer }>('SELECT key FROM traverse_mesh_key WHERE id = 1');
        this.meshKey = row.rows[0]!.key;
      }
      await writer.query('INSERT INTO traverse_replicas (id, mesh_url) VALUES ($1, $2)', [id, this.opts.meshUrl]);
      await listener.query(`LISTEN ${'traverse_replicas'}`);
      const config: HeartbeatConfig = { databaseUrl: this.opts.databaseUrl, id, applicationName: common.application_name, liveness: this.liveness, timeoutMs: timeout };
      beat = new Worker(new URL('./heartbeat-worker.js', import.meta.url), { workerData: config });
      beat.unref();
      const started = beat;
      first = await new Promise<HeartbeatReport>((resolve, reject) => {
        started.once('message', resolve);
        started.once('error', reject);
        started.once('exit', (code) => reject(new Error(`the heartbeat thread exited (${code})`)));
      });
      if (first.kind === 'lost') throw new Error(first.reason);
    } catch (err) {
      await Promise.allSettled([writer.end(), listener.end(), beat?.terminate()]);
      throw err;
    }
    const thread = beat;
    const serial = new SerialClient(writer);
    const bus = new PgBus(
      serial,
      id,
      (batch) => this.received(batch),
      (err) => this.lose(`publishing to the other replicas failed: ${err instanceof Error ? err.message : String(err)}`),
      (why) => this.log.warn({ why }, 'dropped a replica notification'),
    );
    listener.on('notification', (n) => {
      if (n.payload !== undefined) bus.received(n.payload);
    });
    for (const c of [writer, listener]) c.on('end', () => this.lose('database connection closed'));
    this.live = new Liveness(id, this.liveness);
    this.lastBeatSent = Date.now();
    this.mesh = new Mesh({
      self: id,
      key: this.meshKey!,
      deliver: (from, frame) => this.hub.handleMeshFrame(from, frame),
      logger: this.log.child({ component: 'mesh' }),
      ...this.opts.mesh,
      ...(this.opts.trust ? { trust: this.opts.trust } : {}),
      dropped: (reason) => this.metrics?.relayDrops.inc({ reason }),
    });
    const conn: Connection = { writer: serial, listener, beat: thread, bus, id };
    this.conn = conn;
    thread.on('message', (r: HeartbeatReport) => this.heard(conn, r));
    thread.on('error', (err) => this.lose(`the heartbeat thread failed: ${err.message}`));
    thread.on('exit', () => {
      if (this.conn === conn) this.lose('the heartbeat thread ended');
    });
    this.log.info({ replica: id, meshUrl: this.opts.meshUrl }, 'joined the replicas on the database');
    this.heard(conn, first);
  }

  private received(batch: EventBatch): void {
    if (!this.conn) return;
    for (const e of batch.e) {
      if (e.t === 'resync' && e.to === this.conn.id) this.publishAll();
    }
    this.mirror.apply(batch);
  }

  private publishAll(): void {
    const bus = this.conn?.bus;
    if (!bus) return;
    for (const p of this.hub.all()) {
      if (p.replica !== null || p.closed) continue;
      for (const e of snapshotOf(p)) bus.publish(e);
    }
  }

  /** Comes back to the database once it is reachable again (the heartbeat thread went with it). */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || this.conn) return;
    this.ticking = true;
    try {
      await this.attach().catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'database still unreachable'));
    } finally {
      this.ticking = false;
    }
  }

  /** What the heartbeat thread reports: act on who joined, died or left; stop serving if told to. */
  private heard(conn: Connection, r: HeartbeatReport): void {
    if (this.conn !== conn) return; // from a thread of a connection already given up
    if (r.kind === 'lost') return this.lose(r.reason);
    if (r.kind === 'failed') return void this.log.warn({ err: r.error }, 'heartbeat failed');
    const gap = r.sentAt - this.lastBeatSent;
    this.lastBeatSent = r.sentAt;
    this.live.beat(r.atMs);
    // The others declare us dead when the gap reaches deadAfterMs: say so well before.
    if (gap > this.liveness.intervalMs * 2) {
      this.log.warn({ gapMs: gap, timerLateMs: r.timerLateMs, previousBeatMs: r.previousBeatMs, deadAfterMs: deadAfterMs(this.liveness) }, 'heartbeat late');
    }
    for (const c of this.live.observe(r.rows)) this.act(c);
    this.mesh?.setPeers(this.live.peers);
    // The rows of replicas dead for long are removed (by whoever sees it first), and oversized
    // events nobody can still be fetching. Both limits are a minute: every few beats is enough,
    // on the bus's connection (the heartbeat's does nothing else).
    if (this.beats++ % HOUSEKEEPING_EVERY === 0) {
      const stale = `${(deadAfterMs(this.liveness) * 10) / 1000} seconds`;
      const failed = (err: unknown): void => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'removing stale replica rows failed');
      conn.writer.query(`DELETE FROM traverse_replicas WHERE heartbeat_at < now() - $1::interval`, [stale]).catch(failed);
      conn.writer.query(`DELETE FROM traverse_replica_events WHERE created_at < now() - interval '60 seconds'`).catch(failed);
    }
  }

  private act(c: LivenessChange): void {
    if (c.kind === 'joined') {
      this.log.info({ replica: c.id, meshUrl: c.meshUrl }, 'replica joined');
      // It may have missed what we hold (new, or back after being declared dead): ask it for
      // its nodes and it will ask for ours.
      this.conn?.bus.publish({ t: 'resync', to: c.id });
      return;
    }
    const lost = this.mirror.dropReplica(c.id);
    if (c.kind === 'dead') this.log.warn({ replica: c.id, silentMs: Math.round(c.silentMs), nodesLost: lost }, 'replica missed its heartbeats: its nodes are lost');
    else this.log.info({ replica: c.id, nodesLost: lost }, 'replica left');
  }

  /** The database is gone (or we are too far behind it): stop serving until it is back. */
  private lose(reason: string): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = null;
    this.log.error({ replica: conn.id, reason }, 'lost the database: closing every peer connection so the peers go to another replica');
    conn.bus.close();
    this.hooks.closeAll('this replica lost its database; reconnect to another one');
    this.mirror.dropAll();
    this.mesh?.close();
    this.mesh = null;
    void Promise.allSettled([conn.writer.client.end(), conn.listener.end(), conn.beat.terminate()]);
  }

  /**
   * The first half of a clean shutdown, before the peers' connections are closed: the others
   * hear a goodbye and mark our nodes lost (not disconnected), so their tunnel peers keep them
   * until they reconnect elsewhere.
   */
  async leave(): Promise<void> {
    if (this.leaving || !this.conn) return;
    this.leaving = true;
    this.conn.bus.publish({ t: 'bye' });
    await this.conn.bus.drain().catch(() => {});
  }

  /** The second half: stops the heartbeat and the mesh, removes our heartbeat row. */
  async shutdown(): Promise<void> {
    await this.leave();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await new Promise((r) => setTimeout(r, 5));
    const conn = this.conn;
    this.conn = null;
    this.mesh?.close();
    this.mesh = null;
    if (!conn) return;
    await stopThread(conn.beat);
    try {
      await conn.writer.query('DELETE FROM traverse_replicas WHERE id = $1', [conn.id]);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not say goodbye to the other replicas');
    }
    await Promise.allSettled([conn.writer.client.end(), conn.listener.end()]);
  }
}

/** Asks the heartbeat thread to close its connection and end; ends it anyway after a second. */
async function stopThread(thread: Worker): Promise<void> {
  const ended = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  thread.postMessage('stop');
  const force = setTimeout(() => void thread.terminate(), 1000);
  await ended;
  clearTimeout(force);
}
