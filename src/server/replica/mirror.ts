// The nodes of other replicas, mirrored into this replica's hub as Peers whose `replica` names
// their home. The hub treats them like its own for routing (who is whose tunnel peer, whose node
// goes to whom) but never writes to them: what they must hear, their home replica tells them from
// its own mirror. The one thing sent "to" a mirrored node is a relay datagram, which goes to its
// home replica over the mesh (mesh.ts).
import { type ServerConfig } from '../../coordination/protocol.js';
import { DEFAULT_LIMITS, type EndKind, type Hub, type HubChange, type HubLimits, Peer, type PeerLink } from '../hub.js';
import type { EventBatch, ReplicaEvent } from './events.js';

/** How a mirrored node's relay datagrams reach its home replica. */
export interface MeshSender {
  /** `frame` is `[source key][payload]`, as the node would receive it. */
  send(replica: string, destKey: Buffer, frame: Buffer): void;
  buffered(replica: string): number;
}

/** A mirrored node may reach any agent: its home replica checked the allow list. */
const ANY_AGENT: ReadonlySet<string> = new (class extends Set<string> {
  override has(): boolean {
    return true;
  }
})();

/** Never sent anywhere: a mirrored node's config is its home replica's business. */
const MIRROR_CONFIG: ServerConfig = {
  type: 'config',
  version: 0,
  identity: { name: 'mirror', kind: 'client' },
  stun: [],
  relay: { enabled: true, maxPayload: 0 },
  blockDirect: false,
  pingIntervalMs: 0,
  challenge: { key: '0'.repeat(64), nonce: '0'.repeat(64) },
};

/** Another replica, as mirrored here: its id (one copy, shared by its nodes) and its nodes by connection. */
interface Home {
  readonly id: string;
  readonly nodes: Map<number, Peer>;
}

/**
 * How the hub reaches a mirrored node: one small object per node with its methods on the
 * prototype, rather than four closures and their context each (thousands of mirrors per replica).
 */
class MirrorLink implements PeerLink {
  peer!: Peer;

  constructor(
    private readonly mirror: Mirror,
    private readonly home: Home,
    /** The node's connection number on its home replica. */
    readonly conn: number,
  ) {}

  sendText(): void {}

  sendBinary(frame: Buffer): void {
    const key = this.peer.keyBytes;
    if (key) this.mirror.mesh.send(this.home.id, key, frame);
  }

  bufferedAmount(): number {
    return this.mirror.mesh.buffered(this.home.id);
  }

  /**
   * The hub closes a mirrored node when another connection takes its place (its key or its agent
   * identity): it is no longer that replica's business here.
   */
  close(): void {
    queueMicrotask(() => this.mirror.remove(this.home, this.conn, this.peer, 'lost'));
  }
}

export class Mirror {
  private readonly homes = new Map<string, Home>();

  constructor(
    private readonly hub: Hub,
    readonly mesh: MeshSender,
    private readonly limits: HubLimits = DEFAULT_LIMITS,
  ) {}

  /** Nodes mirrored here (a handful of homes: summed when asked, for the metrics). */
  get size(): number {
    let n = 0;
    for (const home of this.homes.values()) n += home.nodes.size;
    return n;
  }

  /** Applies one batch from another replica, in order. */
  apply(batch: EventBatch): void {
    for (const e of batch.e) this.applyOne(batch.r, e);
  }

  private applyOne(from: string, e: ReplicaEvent): void {
    if (e.t === 'attach') return this.attach(from, e.c, e.id, e.kind, e.name, e.at, e.remote);
    if (e.t === 'bye') return void this.dropReplica(from);
    if (e.t === 'resync') return; // replica.ts answers these
    const home = this.homes.get(from);
    const p = home?.nodes.get(e.c);
    if (!home || !p) return;
    switch (e.t) {
      case 'node':
        return this.hub.applyRemote(p, { type: 'node', node: e.node });
      case 'path':
        return this.hub.applyRemote(p, {
          type: 'path',
          peer: e.peer,
          path: e.path,
          rttMs: e.rttMs,
          ...(e.reason === null ? {} : { reason: e.reason }),
          ...(e.streams === null ? {} : { streams: e.streams }),
        });
      case 'tunnel':
      case 'untunnel':
        if (p.kind === 'client') this.hub.applyRemote(p, { type: e.t, agent: e.agent });
        return;
      case 'detach':
        return this.remove(home, e.c, p, e.how);
    }
  }

  private attach(from: string, c: number, identityId: number, kind: 'agent' | 'client', name: string, at: number, remote: string | null): void {
    let home = this.homes.get(from);
    if (home?.nodes.has(c)) return; // a resync repeats what we know
    if (!home) this.homes.set(from, (home = { id: from, nodes: new Map() }));
    const link = new MirrorLink(this, home, c);
    // The literal, not the parsed copy each notification carries (one string fewer per mirror).
    const peer = new Peer(identityId, kind === 'agent' ? 'agent' : 'client', name, link, ANY_AGENT, at, remote, this.limits);
    link.peer = peer;
    peer.replica = home.id;
    // A mirrored client beyond the identity's node bound is not mirrored: its home refuses it too.
    if (!this.hub.attach(peer, MIRROR_CONFIG).ok) return;
    home.nodes.set(c, peer);
  }

  /** A mirrored node is gone: from the mirror and from the hub. */
  remove(home: Home, c: number, peer: Peer, how: EndKind): void {
    if (home.nodes.get(c) === peer) home.nodes.delete(c);
    this.hub.detach(peer, how);
  }

  /**
   * A replica died, lost its database or said goodbye: its nodes are lost (their tunnel peers keep
   * the paths they have, and hear of them again when they reconnect elsewhere). Returns how many.
   */
  dropReplica(replica: string): number {
    const home = this.homes.get(replica);
    if (!home) return 0;
    this.homes.delete(replica);
    const nodes = [...home.nodes.values()];
    home.nodes.clear();
    let n = 0;
    for (const p of nodes) {
      if (p.closed) continue;
      this.hub.detach(p, 'lost');
      n++;
    }
    return n;
  }

  /** Every mirrored node, when this replica itself loses the database. */
  dropAll(): void {
    for (const r of [...this.homes.keys()]) this.dropReplica(r);
  }
}

/** The events that describe one of this replica's own nodes now, for a resync. */
export function snapshotOf(peer: Peer): ReplicaEvent[] {
  const c = peer.connection;
  const out: ReplicaEvent[] = [{ t: 'attach', c, id: peer.identityId, kind: peer.kind, name: peer.name, at: peer.connectedAt, remote: peer.remote }];
  if (peer.node) out.push({ t: 'node', c, node: peer.node });
  for (const agent of peer.tunnels.keys()) out.push({ t: 'tunnel', c, agent });
  return out;
}

/** The event that tells other replicas of one change to a node of this replica. */
export function eventOf(change: HubChange): ReplicaEvent | undefined {
  const c = change.peer.connection;
  switch (change.kind) {
    case 'attach':
      return { t: 'attach', c, id: change.peer.identityId, kind: change.peer.kind, name: change.peer.name, at: change.peer.connectedAt, remote: change.peer.remote };
    case 'node':
      return change.peer.node ? { t: 'node', c, node: change.peer.node } : undefined;
    case 'tunnel':
    case 'untunnel':
      return { t: change.kind, c, agent: change.agent };
    case 'detach':
      return { t: 'detach', c, how: change.how };
    case 'path':
      return { t: 'path', c, ...change.report };
  }
}

