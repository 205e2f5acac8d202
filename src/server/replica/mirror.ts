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

export class Mirror {
  /** "replica/connection" -> the mirrored node. */
  private readonly nodes = new Map<string, Peer>();
  private readonly byReplica = new Map<string, Set<string>>();

  constructor(
    private readonly hub: Hub,
    private readonly mesh: MeshSender,
    private readonly limits: HubLimits = DEFAULT_LIMITS,
  ) {}

  get size(): number {
    return this.nodes.size;
  }

  /** Applies one batch from another replica, in order. */
  apply(batch: EventBatch): void {
    for (const e of batch.e) this.applyOne(batch.r, e);
  }

  private applyOne(from: string, e: ReplicaEvent): void {
    switch (e.t) {
      case 'attach':
        return this.attach(from, e.c, e.id, e.kind, e.name, e.at, e.remote);
      case 'node': {
        const p = this.nodes.get(`${from}/${e.c}`);
        if (p) this.hub.applyRemote(p, { type: 'node', node: e.node });
        return;
      }
      case 'path': {
        const p = this.nodes.get(`${from}/${e.c}`);
        if (p) {
          this.hub.applyRemote(p, {
            type: 'path',
            peer: e.peer,
            path: e.path,
            rttMs: e.rttMs,
            ...(e.reason === null ? {} : { reason: e.reason }),
            ...(e.streams === null ? {} : { streams: e.streams }),
          });
        }
        return;
      }
      case 'tunnel':
      case 'untunnel': {
        const p = this.nodes.get(`${from}/${e.c}`);
        if (p?.kind === 'client') this.hub.applyRemote(p, { type: e.t, agent: e.agent });
        return;
      }
      case 'detach': {
        const id = `${from}/${e.c}`;
        const p = this.nodes.get(id);
        if (p) this.remove(from, id, p, e.how);
        return;
      }
      case 'bye':
        return void this.dropReplica(from);
      case 'resync':
        return; // replica.ts answers these
    }
  }

  private attach(from: string, c: number, identityId: number, kind: 'agent' | 'client', name: string, at: number, remote: string | null): void {
    const id = `${from}/${c}`;
    if (this.nodes.has(id)) return; // a resync repeats what we know
    const mesh = this.mesh;
    const link: PeerLink = {
      sendText: () => {},
      sendBinary: (frame) => {
        if (peer.keyBytes) mesh.send(from, peer.keyBytes, frame);
      },
      bufferedAmount: () => mesh.buffered(from),
      // The hub closes a mirrored node when another connection takes its place (its key or its
      // agent identity): it is no longer that replica's business here.
      close: () => queueMicrotask(() => this.remove(from, id, peer, 'lost')),
    };
    const peer = new Peer(identityId, kind, name, link, ANY_AGENT, at, remote, this.limits);
    peer.replica = from;
    // A mirrored client beyond the identity's node bound is not mirrored: its home refuses it too.
    if (!this.hub.attach(peer, MIRROR_CONFIG).ok) return;
    this.nodes.set(id, peer);
    let set = this.byReplica.get(from);
    if (!set) this.byReplica.set(from, (set = new Set()));
    set.add(id);
  }

  private remove(from: string, id: string, peer: Peer, how: EndKind): void {
    this.nodes.delete(id);
    this.byReplica.get(from)?.delete(id);
    this.hub.detach(peer, how);
  }

  /**
   * A replica died, lost its database or said goodbye: its nodes are lost (their tunnel peers keep
   * the paths they have, and hear of them again when they reconnect elsewhere). Returns how many.
   */
  dropReplica(replica: string): number {
    const ids = this.byReplica.get(replica);
    if (!ids) return 0;
    this.byReplica.delete(replica);
    let n = 0;
    for (const id of ids) {
      const p = this.nodes.get(id);
      this.nodes.delete(id);
      if (p && !p.closed) {
        this.hub.detach(p, 'lost');
        n++;
      }
    }
    return n;
  }

  /** Every mirrored node, when this replica itself loses the database. */
  dropAll(): void {
    for (const r of [...this.byReplica.keys()]) this.dropReplica(r);
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

