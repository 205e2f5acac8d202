// The coordination state of one server: which nodes are connected under which identity, which
// tunnels exist, who gets whose node, and the relay between tunnel peers. It knows nothing of
// HTTP or WebSocket: each node is reached through a PeerLink, so tests drive it with plain objects.
//
// An identity is a person or a workspace; a node is one process of it with its own key and its
// own connection. A client identity may have up to `maxNodesPerClient` nodes at once (an editor's
// ssh sessions, a forward, a ping), each with its own tunnels and paths; the next one is refused,
// so a runaway script cannot crowd out the server. An agent identity has one agent node at a
// time: a new agent process replaces the old one (a restarted workspace).
//
// Tunnels live only in memory and only while the client node that asked for them is connected;
// a reconnecting node asks again (CoordinatorClient does this by itself). What must survive a
// restart (identities, tokens, rules, history) is in the Store.
import {
  CloseCode,
  MAX_NODES_PER_CLIENT,
  MAX_PEER_UPDATES_PER_MESSAGE,
  MAX_TEXT_BYTES,
  clientMessage,
  describeIssues,
  type ClientMessage,
  type Node,
  type Path,
  type PeerKind,
  type PeerUpdate,
  type ServerConfig,
  type ServerMessage,
  type StreamCarriers,
} from '../coordination/protocol.js';
import type { PeerView, TunnelView } from '../coordination/views.js';
import { splitEndpoint } from '../net/endpoint.js';
import { isIP } from 'node:net';
import { samePath } from '../net/path.js';
import type { CoordinatorMetrics } from './metrics.js';
import { Peer, type HubLimits } from './peer.js';
import { PeerIndex } from './peer-index.js';
import { deliverMeshFrame, forwardRelayFrame } from './relay.js';

export { Peer, type HubLimits, type PeerLink } from './peer.js';

export const DEFAULT_LIMITS: HubLimits = {
  messagesPerSec: 20,
  // About 1 Gbit/s per peer: a relay lane at that rate costs the server a tenth to a quarter of a
  // core, batched relayed datagrams a fifth to a third (bench:relay; README, --relay-rate).
  relayBytesPerSec: 128 * 1024 * 1024,
  maxRelayBuffered: 1024 * 1024,
  maxTunnelsPerClient: 64,
  maxNodesPerClient: MAX_NODES_PER_CLIENT,
};

/** Persistence and logging hooks; the hub never waits for them. */
export interface HubHooks {
  nodeKeyRegistered?(peer: Peer, key: string): void;
  pathReported?(reporter: Peer, peer: Peer, path: Path): void;
  /** A new agent process took over from `old`. */
  agentReplaced?(old: Peer, by: Peer): void;
  /**
   * Whether `proof` shows that the node holds the private half of `key` (key-proof.ts). Without
   * this hook every key is taken on trust (unit tests of the hub only).
   */
  verifyKeyProof?(peer: Peer, key: string, proof: string | undefined): boolean;
  /** A change to one of this process's own nodes that other replicas must mirror (replica/). */
  changed?(change: HubChange): void;
}

export type HubChange =
  | { readonly kind: 'attach' | 'node'; readonly peer: Peer }
  | { readonly kind: 'tunnel' | 'untunnel'; readonly peer: Peer; readonly agent: string }
  | { readonly kind: 'detach'; readonly peer: Peer; readonly how: EndKind }
  /** The node reported its path to a tunnel peer: mirrored so that every replica's views show it. */
  | { readonly kind: 'path'; readonly peer: Peer; readonly report: PathReport };

/** A path report as the hub keeps it (the `path` message with its optional fields settled). */
export interface PathReport {
  readonly peer: string;
  readonly path: Path;
  readonly rttMs: number | null;
  readonly reason: string | null;
  readonly streams: StreamCarriers | null;
}

export type EndKind = 'disconnected' | 'lost';

/** Whether the hub took a node, and if not, why (the server closes it with that code). */
export type AttachResult = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly reason: string };

/** Who is asking for a view: a node's identity sees what it may reach, an admin sees everything. */
export type Viewer =
  | { readonly kind: 'admin' }
  | { readonly kind: 'agent'; readonly name: string }
  | { readonly kind: 'client'; readonly name: string; readonly allow: ReadonlySet<string> };

export class Hub {
  private readonly byIdentity = new PeerIndex();
  private readonly byKey = new Map<string, Peer>();
  /** agent name -> client nodes connected now with a tunnel to it. */
  private readonly tunnelsByAgent = new PeerIndex();

  constructor(
    private readonly limits: HubLimits = DEFAULT_LIMITS,
    private readonly metrics?: CoordinatorMetrics,
    private readonly hooks: HubHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Connected nodes, of all identities. */
  get size(): number {
    return this.byIdentity.size;
  }

  /** The agent node of an agent identity, if one is connected. */
  agent(name: string): Peer | undefined {
    return this.byIdentity.first(`agent:${name}`);
  }

  /** The connected nodes of one identity. */
  nodesOf(kind: PeerKind, name: string): Peer[] {
    return [...this.byIdentity.get(`${kind}:${name}`)];
  }

  *all(): IterableIterator<Peer> {
    yield* this.byIdentity.all();
  }

  /**
   * Adds a freshly authenticated node and sends it its config. A new agent node replaces the
   * identity's old one; a client node beyond the identity's bound is refused.
   */
  attach(peer: Peer, config: ServerConfig): AttachResult {
    let notice: string | undefined;
    if (peer.kind === 'agent') {
      for (const old of this.nodesOf('agent', peer.name)) {
        // Across replicas this is usually the same agent reconnecting elsewhere (its replica died):
        // its clients keep its paths (lost) until its node arrives again, and nobody is told of a
        // replacement that may not be one.
        const sameReplica = old.replica === peer.replica;
        this.detach(old, sameReplica ? 'disconnected' : 'lost');
        old.link.close(CloseCode.replaced, `replaced by a newer agent process of "${peer.name}"${peer.remote ? ` from ${peer.remote}` : ''}`);
        if (old.replica === null) this.hooks.agentReplaced?.(old, peer);
        if (sameReplica) notice = `replaced the previous agent process of "${peer.name}" (connected since ${new Date(old.connectedAt).toISOString()}${old.remote ? ` from ${old.remote}` : ''})`;
      }
    }
    const identity = peer.identity;
    const nodes = this.byIdentity.count(identity);
    if (peer.kind === 'client' && nodes >= this.limits.maxNodesPerClient) {
      return {
        ok: false,
        code: CloseCode.tooManyNodes,
        reason: `"${peer.name}" already has ${nodes} connected nodes (at most ${this.limits.maxNodesPerClient}); stop some traverse processes of it`,
      };
    }
    this.byIdentity.add(identity, peer);
    if (peer.replica === null) this.metrics?.peers.inc({ kind: peer.kind }); // this replica's own connections
    this.send(peer, notice ? { ...config, notice } : config);
    if (peer.kind === 'agent') {
      // The agent learns the client nodes already waiting for it.
      const waiting = [...this.tunnelsByAgent.get(peer.name)].filter((c) => c.node !== null);
      for (let i = 0; i < waiting.length; i += MAX_PEER_UPDATES_PER_MESSAGE) {
        this.send(peer, { type: 'peers', updates: waiting.slice(i, i + MAX_PEER_UPDATES_PER_MESSAGE).map(nodeUpdate) });
      }
    }
    this.changed({ kind: 'attach', peer });
    return { ok: true };
  }

  /** Removes a node and tells its tunnel peers; idempotent. */
  detach(peer: Peer, how: EndKind): void {
    if (peer.closed) return;
    peer.closed = true;
    if (this.byIdentity.delete(peer.identity, peer) && peer.replica === null) this.metrics?.peers.dec({ kind: peer.kind });
    if (peer.node && this.byKey.get(peer.node.key) === peer) this.byKey.delete(peer.node.key);
    this.changed({ kind: 'detach', peer, how });
    if (!peer.node) return; // nobody was told of a node that never published
    const update: PeerUpdate = { kind: how, name: peer.name, peerKind: peer.kind, key: peer.node.key };
    const text = JSON.stringify({ type: 'peers', updates: [update] } satisfies ServerMessage);
    if (peer.kind === 'client') {
      for (const agentName of peer.tunnels.keys()) {
        this.tunnelsByAgent.delete(agentName, peer);
        const agent = this.agent(agentName);
        if (agent) this.sendText(agent, text, 'peers');
      }
    } else {
      for (const client of this.tunnelsByAgent.get(peer.name)) this.sendText(client, text, 'peers');
    }
  }

  /** One text frame from a node. Closes the connection on malformed input or abuse. */
  handleText(peer: Peer, text: string): void {
    if (peer.closed || peer.closing) return;
    if (Buffer.byteLength(text) > MAX_TEXT_BYTES) {
      return peer.link.close(CloseCode.tooBig, `message larger than ${MAX_TEXT_BYTES} bytes`);
    }
    if (!peer.messages.take(this.now())) {
      this.metrics?.closes.inc({ reason: 'rate' });
      return peer.link.close(CloseCode.policy, `too many messages: at most ${this.limits.messagesPerSec}/s`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return peer.link.close(CloseCode.policy, 'message is not JSON');
    }
    const parsed = clientMessage.safeParse(json);
    if (!parsed.success) return peer.link.close(CloseCode.policy, truncate(`invalid message: ${describeIssues(parsed.error)}`));
    this.metrics?.messages.inc({ direction: 'in', type: parsed.data.type });
    this.dispatch(peer, parsed.data);
  }

  /** One relay frame from a node (relay.ts). */
  handleBinary(peer: Peer, frame: Buffer): void {
    forwardRelayFrame(this.routes, this.limits, this.metrics, peer, frame, this.now());
  }

  /** One relay frame from another replica's relay (replica/mesh.ts), for a node of this one. */
  handleMeshFrame(from: string, frame: Buffer): void {
    deliverMeshFrame(this.routes, this.limits, this.metrics, from, frame);
  }

  /** Applies what a node of another replica did, as mirrored by replica/mirror.ts: no rate limit, no proof (its replica checked both). */
  applyRemote(peer: Peer, msg: ClientMessage): void {
    if (!peer.closed && peer.replica !== null) this.dispatch(peer, msg);
  }

  private changed(change: HubChange): void {
    if (change.peer.replica === null) this.hooks.changed?.(change);
  }

  /** Who may relay to whom: for relay frames here, and for relay lanes (relay-lane.ts). */
  readonly routes = {
    byKey: (key: string) => this.byKey.get(key),
    haveTunnel: (a: Peer, b: Peer) => this.haveTunnel(a, b),
  };

  private dispatch(peer: Peer, msg: ClientMessage): void {
    switch (msg.type) {
      case 'node':
        return this.publish(peer, msg.node, msg.proof);
      case 'tunnel':
        return this.openTunnel(peer, msg.agent);
      case 'untunnel':
        return this.closeTunnel(peer, msg.agent, 'closed by the client');
      case 'path':
        return this.reportPath(peer, msg.peer, msg.path, msg.rttMs ?? null, msg.reason ?? null, msg.streams ?? null);
    }
  }

  private publish(peer: Peer, node: Node, proof: string | undefined): void {
    if (peer.node && peer.node.key !== node.key) {
      return peer.link.close(CloseCode.policy, 'node key changed; reconnect to register a new key');
    }
    if (!peer.node) {
      // A key is taken only with proof that the node holds it: nobody can squat a key they read.
      if (peer.replica === null && this.hooks.verifyKeyProof && !this.hooks.verifyKeyProof(peer, node.key, proof)) {
        this.metrics?.closes.inc({ reason: 'key-proof' });
        return peer.link.close(CloseCode.keyProof, 'the node key proof is missing or wrong: this node does not hold that key');
      }
      const holder = this.byKey.get(node.key);
      if (holder && holder !== peer && holder.replica !== peer.replica) {
        // The node reconnected through another replica before this one noticed its old
        // connection die: the key (proved again just now) moves to the new connection.
        this.detach(holder, 'lost');
        holder.link.close(CloseCode.goingAway, 'this node connected again through another replica');
      } else if (holder && holder !== peer) {
        return peer.link.close(CloseCode.policy, 'this node key belongs to another connected node');
      }
      this.byKey.set(node.key, peer);
      if (peer.replica === null) this.hooks.nodeKeyRegistered?.(peer, node.key);
    }
    peer.node = node;
    this.changed({ kind: 'node', peer });
    // Serialise once, send to every tunnel peer: fan-out costs one stringify per update.
    const text = JSON.stringify({ type: 'peers', updates: [nodeUpdate(peer)] } satisfies ServerMessage);
    for (const other of this.tunnelPeers(peer)) this.sendText(other, text, 'peers');
  }

  private openTunnel(client: Peer, agentName: string): void {
    if (client.kind !== 'client') {
      return this.send(client, { type: 'error', code: 'forbidden', message: 'agents cannot open tunnels' });
    }
    if (client.tunnels.has(agentName)) return this.send(client, { type: 'tunnel', agent: agentName, status: this.status(agentName) });
    // An unknown agent and a forbidden one get the same answer: nothing is learned.
    if (!client.allow.has(agentName)) {
      return this.send(client, { type: 'tunnel', agent: agentName, status: 'refused', reason: 'not allowed' });
    }
    if (client.tunnels.size >= this.limits.maxTunnelsPerClient) {
      return this.send(client, {
        type: 'tunnel',
        agent: agentName,
        status: 'refused',
        reason: `too many tunnels (at most ${this.limits.maxTunnelsPerClient})`,
      });
    }
    client.tunnels.set(agentName, { since: this.now(), paths: { client: null, agent: null }, rttMs: { client: null, agent: null }, reasons: { client: null, agent: null }, streams: { client: null, agent: null } });
    this.tunnelsByAgent.add(agentName, client);
    this.changed({ kind: 'tunnel', peer: client, agent: agentName });
    this.send(client, { type: 'tunnel', agent: agentName, status: this.status(agentName) });
    const agent = this.agent(agentName);
    if (agent?.node) this.send(client, { type: 'peers', updates: [nodeUpdate(agent)] });
    if (agent && client.node) this.send(agent, { type: 'peers', updates: [nodeUpdate(client)] });
  }

  /** Ends a tunnel of one client node: it is told why, the agent sees that node go. */
  closeTunnel(client: Peer, agentName: string, reason: string): void {
    if (!client.tunnels.delete(agentName)) return;
    this.tunnelsByAgent.delete(agentName, client);
    this.changed({ kind: 'untunnel', peer: client, agent: agentName });
    this.send(client, { type: 'tunnel', agent: agentName, status: 'closed', reason });
    const agent = this.agent(agentName);
    if (agent && client.node) {
      this.send(agent, {
        type: 'peers',
        updates: [{ kind: 'disconnected', name: client.name, peerKind: 'client', key: client.node.key }],
      });
    }
  }

  /** Applies a changed allow list to a connected client node: tunnels no longer allowed end. */
  setAllow(client: Peer, allow: ReadonlySet<string>): void {
    client.allow = allow;
    for (const agentName of [...client.tunnels.keys()]) {
      if (!allow.has(agentName)) this.closeTunnel(client, agentName, 'no longer allowed');
    }
  }

  private reportPath(reporter: Peer, key: string, path: Path, rttMs: number | null, reason: string | null, streams: StreamCarriers | null): void {
    const other = this.byKey.get(key);
    if (!other || !this.haveTunnel(reporter, other)) {
      return this.send(reporter, { type: 'error', code: 'no-tunnel', message: 'path reported for a peer without a tunnel' });
    }
    const client = reporter.kind === 'client' ? reporter : other;
    const agent = reporter.kind === 'client' ? other : reporter;
    const tunnel = client.tunnels.get(agent.name);
    if (!tunnel) return;
    // History keeps changes only: a node repeating its path costs no row.
    const before = tunnel.paths[reporter.kind];
    tunnel.paths[reporter.kind] = path;
    tunnel.rttMs[reporter.kind] = rttMs;
    tunnel.reasons[reporter.kind] = path.kind === 'relay' ? reason : null;
    tunnel.streams[reporter.kind] = streams;
    // A mirrored node's report was stored by its home replica, which also told us of it.
    if (reporter.replica !== null) return;
    if (before === null || !samePath(before, path)) this.hooks.pathReported?.(reporter, other, path);
    this.changed({ kind: 'path', peer: reporter, report: { peer: key, path, rttMs, reason, streams } });
  }

  /**
   * Whether two connected nodes are the ends of a tunnel. Nodes come from byKey, which holds
   * attached nodes only, and an agent identity has one attached node: its name says which.
   */
  private haveTunnel(a: Peer, b: Peer): boolean {
    if (a.kind === 'client' && b.kind === 'agent') return a.tunnels.has(b.name);
    if (a.kind === 'agent' && b.kind === 'client') return b.tunnels.has(a.name);
    return false;
  }

  private tunnelPeers(peer: Peer): Peer[] {
    if (peer.kind === 'agent') return [...this.tunnelsByAgent.get(peer.name)];
    const out: Peer[] = [];
    for (const agentName of peer.tunnels.keys()) {
      const agent = this.agent(agentName);
      if (agent) out.push(agent);
    }
    return out;
  }

  private status(agentName: string): 'open' | 'waiting' {
    return this.agent(agentName)?.node ? 'open' : 'waiting';
  }

  private send(peer: Peer, msg: ServerMessage): void {
    this.sendText(peer, JSON.stringify(msg), msg.type);
  }

  private sendText(peer: Peer, text: string, type: string): void {
    if (peer.closed) return;
    peer.link.sendText(text);
    this.metrics?.messages.inc({ direction: 'out', type });
  }

  // ---- views for the HTTP API (src/coordination/views.ts) ----

  peersView(viewer: Viewer): PeerView[] {
    const out: PeerView[] = [];
    for (const p of this.all()) {
      if (!this.visible(viewer, p)) continue;
      out.push({ name: p.name, kind: p.kind, key: p.node?.key ?? null, connectedAt: p.connectedAt, remote: p.remote, node: p.node });
    }
    return out;
  }

  tunnelsView(viewer: Viewer): TunnelView[] {
    const out: TunnelView[] = [];
    for (const p of this.all()) {
      if (p.kind !== 'client') continue;
      for (const [agentName, tunnel] of p.tunnels) {
        const mine =
          viewer.kind === 'admin' ||
          (viewer.kind === 'client' && viewer.name === p.name) ||
          (viewer.kind === 'agent' && viewer.name === agentName);
        if (!mine) continue;
        const agent = this.agent(agentName);
        out.push({
          client: p.name,
          clientKey: p.node?.key ?? null,
          agent: agentName,
          agentKey: agent?.node?.key ?? null,
          since: tunnel.since,
          agentOnline: agent !== undefined,
          paths: { ...tunnel.paths },
          rttMs: { ...tunnel.rttMs },
          relayReasons: { ...tunnel.reasons },
          streams: { ...tunnel.streams },
        });
      }
    }
    return out;
  }

  private visible(viewer: Viewer, p: Peer): boolean {
    if (viewer.kind === 'admin') return true;
    if (viewer.kind === p.kind && viewer.name === p.name) return true;
    if (viewer.kind === 'client') return p.kind === 'agent' && viewer.allow.has(p.name);
    return p.kind === 'client' && p.tunnels.has(viewer.name);
  }
}

function nodeUpdate(p: Peer): PeerUpdate {
  // Behind a trusted proxy `remote` is an address without a port.
  const seenFrom = p.remote ? (splitEndpoint(p.remote)?.address ?? (isIP(p.remote) ? p.remote : null)) : null;
  return { kind: 'node', name: p.name, peerKind: p.kind, node: p.node!, seenFrom };
}

/** WebSocket close reasons are limited to 123 bytes. */
export function truncate(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 110).toString() + '...';
}
