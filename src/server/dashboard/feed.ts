// The live feed behind the dashboard: it polls its source (the hub's nodes and tunnels, the
// store's identities), compares with what it sent last, and pushes only what changed to every
// open page, serialised once for all of them. A page that connects gets a full snapshot first.
// Polling, not hooks in the hub: the hub stays unaware of the dashboard, and a burst of changes
// (a thousand nodes reconnecting) costs one patch per tick, not one message per change.
import type { IdentityRow, NodeRow, Patch, Snapshot, TunnelRow, Warning } from './wire.js';
import { healthWarnings } from './health.js';

/** A tunnel as its source sees it; the feed adds when its path last changed. */
export type TunnelSourceRow = Omit<TunnelRow, 'pathSince'>;

export interface DashboardSource {
  identities(): Promise<IdentityRow[]>;
  nodes(): NodeRow[];
  tunnels(): TunnelSourceRow[];
}

export interface FeedOptions {
  /** How often nodes and tunnels are compared (ms). */
  readonly intervalMs: number;
  /** How often the store's identities are read (ms). */
  readonly identitiesIntervalMs: number;
  readonly matrix: boolean;
}

export const DEFAULT_FEED: FeedOptions = { intervalMs: 500, identitiesIntervalMs: 2000, matrix: false };

/** One open page: gets (event name, JSON text). Returns false when it cannot keep up. */
export type Subscriber = (event: 'snapshot' | 'patch', data: string) => boolean;

class Table<T extends { id: string }> {
  readonly rows = new Map<string, { row: T; json: string }>();

  /** Replaces the table's content; returns what changed. */
  update(next: readonly T[]): { upsert: T[]; remove: string[] } {
    const upsert: T[] = [];
    const seen = new Set<string>();
    for (const row of next) {
      seen.add(row.id);
      const old = this.rows.get(row.id);
      if (old?.row === row) continue; // a source that keeps unchanged rows saves the comparison
      const json = JSON.stringify(row);
      if (old?.json === json) continue;
      this.rows.set(row.id, { row, json });
      upsert.push(row);
    }
    const remove: string[] = [];
    for (const id of this.rows.keys()) {
      if (!seen.has(id)) {
        this.rows.delete(id);
        remove.push(id);
      }
    }
    return { upsert, remove };
  }

  list(): T[] {
    return [...this.rows.values()].map((r) => r.row);
  }
}

export class Feed {
  private readonly identities = new Table<IdentityRow>();
  private readonly nodes = new Table<NodeRow>();
  private readonly tunnels = new Table<TunnelRow>();
  private readonly pathSince = new Map<string, { kind: string; at: number }>();
  private health: Warning[] = [];
  private healthJson = '[]';
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | null = null;
  private lastIdentities = -Infinity;
  private ticking: Promise<void> | null = null;
  private primed = false;

  constructor(
    private readonly source: DashboardSource,
    private readonly opts: FeedOptions = DEFAULT_FEED,
    private readonly now: () => number = Date.now,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Adds a page: it gets a snapshot at once, then patches. Returns the unsubscribe function. */
  async subscribe(sub: Subscriber): Promise<() => void> {
    if (!this.primed) await this.tick();
    this.subscribers.add(sub);
    sub('snapshot', JSON.stringify(this.snapshot()));
    this.timer ??= setInterval(() => void this.tick(), this.opts.intervalMs);
    return () => {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  snapshot(): Snapshot {
    return {
      now: this.now(),
      identities: this.identities.list(),
      nodes: this.nodes.list(),
      tunnels: this.tunnels.list(),
      health: this.health,
      matrix: this.opts.matrix,
    };
  }

  /** Compares the source with what was sent and pushes the difference; one tick at a time. */
  tick(): Promise<void> {
    this.ticking ??= this.compare()
      .catch((err: unknown) => this.onError(err))
      .finally(() => (this.ticking = null));
    return this.ticking;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.subscribers.clear();
  }

  private async compare(): Promise<void> {
    const t = this.now();
    let ids: { upsert: IdentityRow[]; remove: string[] } = { upsert: [], remove: [] };
    if (t - this.lastIdentities >= this.opts.identitiesIntervalMs) {
      this.lastIdentities = t;
      ids = this.identities.update(await this.source.identities());
    }
    const nodes = this.nodes.update(this.source.nodes());
    const tunnels = this.tunnels.update(this.withPathSince(this.source.tunnels(), t));
    const health = healthWarnings(this.nodes.list(), this.identities.list(), t);
    const healthJson = JSON.stringify(health);
    const healthChanged = healthJson !== this.healthJson;
    this.health = health;
    this.healthJson = healthJson;
    this.primed = true;
    const changed = ids.upsert.length + ids.remove.length + nodes.upsert.length + nodes.remove.length + tunnels.upsert.length + tunnels.remove.length > 0;
    if (!changed && !healthChanged) return;
    const patch: Patch = {
      now: t,
      upsert: {
        ...(ids.upsert.length ? { identities: ids.upsert } : {}),
        ...(nodes.upsert.length ? { nodes: nodes.upsert } : {}),
        ...(tunnels.upsert.length ? { tunnels: tunnels.upsert } : {}),
      },
      remove: {
        ...(ids.remove.length ? { identities: ids.remove } : {}),
        ...(nodes.remove.length ? { nodes: nodes.remove } : {}),
        ...(tunnels.remove.length ? { tunnels: tunnels.remove } : {}),
      },
      ...(healthChanged ? { health } : {}),
    };
    const text = JSON.stringify(patch);
    for (const sub of [...this.subscribers]) if (!sub('patch', text)) this.subscribers.delete(sub);
  }

  private withPathSince(rows: readonly TunnelSourceRow[], t: number): TunnelRow[] {
    const seen = new Set<string>();
    const out = rows.map((r) => {
      seen.add(r.id);
      let p = this.pathSince.get(r.id);
      if (!p || p.kind !== r.path) this.pathSince.set(r.id, (p = { kind: r.path, at: p ? t : r.since }));
      return { ...r, pathSince: p.at };
    });
    for (const id of this.pathSince.keys()) if (!seen.has(id)) this.pathSince.delete(id);
    return out;
  }
}
