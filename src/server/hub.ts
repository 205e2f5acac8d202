// The coordination state of one server: who is connected, which tunnels exist, who gets
// whose node, and the relay between tunnel peers. It knows nothing of HTTP or WebSocket:
// each peer is reached through a PeerLink, so tests can drive it with plain objects.
//
// Tunnels live only in memory and only while the client that asked for them is connected;
// a reconnecting client asks again (CoordinatorClient does this by itself). What must survive
// a restart (identities, tokens, rules, history) is in the Store.
import {
  CloseCode,
  MAX_RELAY_PAYLOAD,
  MAX_TEXT_BYTES,
  NODE_KEY_BYTES,
  bytesToKey,
  clientMessage,
  describeIssues,
  type ClientMessage,
  type Node,
  type Path,
  type PeerKind,
  type PeerUpdate,
  type ServerMessage,
} from '../coordination/protocol.js';
import { TokenBucket } from './rate-limit.js';
import type { CoordinatorMetrics } from './metrics.js';

/** How the hub reaches one connected peer. */
export interface PeerLink {
  sendText(text: string): void;
  sendBinary(frame: Buffer): void;
  /** Bytes queued for this peer and not yet written to the socket. */
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}

export interface HubLimits {
  /** Coordination messages per second per connection (burst: twice that). */
  readonly messagesPerSec: number;
  /** Relay payload bytes per second per connection; 0: unlimited. */
  readonly relayBytesPerSec: number;
  /** Bytes queued for a receiver beyond which relay datagrams to it are dropped. */
  readonly maxRelayBuffered: number;
  readonly maxTunnelsPerClient: number;
}

export const DEFAULT_LIMITS: HubLimits = {
  messagesPerSec: 20,
  relayBytesPerSec: 16 * 1024 * 1024,
  maxRelayBuffered: 1024 * 1024,
  maxTunnelsPerClient: 64,
};

/** Persistence and logging hooks; the hub never waits for them. */
export interface HubHooks {
  nodeKeyRegistered?(peer: Peer, key: string): void;
  pathReported?(reporter: Peer, peer: Peer, path: Path): void;
}

export type EndKind = 'disconnected' | 'lost';

export class Peer {
  node: Node | null = null;
  keyBytes: Buffer | null = null;
  /** For clients: agent name -> when the tunnel was opened (ms). */
  readonly tunnels = new Map<string, number>();
  readonly messages: TokenBucket;
  readonly relay: TokenBucket;
  closed = false;

  constructor(
    readonly identityId: number,
    readonly kind: PeerKind,
    readonly name: string,
    readonly link: PeerLink,
    /** For clients: the agents it may reach. Replaced when the rules change. */
    public allow: ReadonlySet<string>,
    readonly connectedAt: number,
    readonly remote: string | null,
    limits: HubLimits,
  ) {
    this.messages = new TokenBucket(limits.messagesPerSec, limits.messagesPerSec * 2, connectedAt);
    this.relay = new TokenBucket(limits.relayBytesPerSec, Math.max(limits.relayBytesPerSec, MAX_RELAY_PAYLOAD * 4), connectedAt);
  }

  get id(): string {
    return `${this.kind}:${this.name}`;
  }
}

export interface PeerView {
  readonly name: string;
  readonly kind: PeerKind;
  readonly connectedAt: number;
  readonly remote: string | null;
  readonly node: Node | null;
}

export interface TunnelView {
  readonly client: string;
  readonly agent: string;
  readonly since: number;
  readonly agentOnline: boolean;
  /** The path each side reported last; null until it reports. */
  readonly paths: { readonly client: Path | null; readonly agent: Path | null };
}

/** Who is asking for a view: a peer sees what it may reach, an admin sees everything. */
export type Viewer =
  | { readonly kind: 'admin' }
  | { readonly kind: 'agent'; readonly name: string }
  | { readonly kind: 'client'; readonly name: string; readonly allow: ReadonlySet<string> };

export class Hub {
  private readonly peers = new Map<string, Peer>();
  private readonly byKey = new Map<string, Peer>();
  /** agent name -> clients connected now with a tunnel to it. */
  private readonly tunnelsByAgent = new Map<string, Set<Peer>>();
  /** "client\nagent" -> last path reported by each side. */
  private readonly paths = new Map<string, { client: Path | null; agent: Path | null }>();

  constructor(
    private readonly limits: HubLimits = DEFAULT_LIMITS,
    private readonly metrics?: CoordinatorMetrics,
    private readonly hooks: HubHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.peers.size;
  }

  find(kind: PeerKind, name: string): Peer | undefined {
    return this.peers.get(`${kind}:${name}`);
  }

  all(): IterableIterator<Peer> {
    return this.peers.values();
  }

  /**
   * Adds a freshly authenticated peer and sends it its config. A live connection with the
   * same identity is closed first: one identity, one connection.
   */
  attach(peer: Peer, config: ServerMessage): void {
    const old = this.peers.get(peer.id);
    if (old) {
      this.detach(old, 'disconnected');
      old.link.close(CloseCode.replaced, 'replaced by a newer connection with the same identity');
    }
    this.peers.set(peer.id, peer);
    this.metrics?.peers.inc({ kind: peer.kind });
    this.send(peer, config);
    if (peer.kind === 'agent') {
      // The agent learns the clients already waiting for it.
      const waiting = [...(this.tunnelsByAgent.get(peer.name) ?? [])].filter((c) => c.node !== null);
      if (waiting.length > 0) this.send(peer, { type: 'peers', updates: waiting.map(nodeUpdate) });
    }
  }

  /** Removes a peer and tells its tunnel peers; idempotent. */
  detach(peer: Peer, how: EndKind): void {
    if (peer.closed) return;
    peer.closed = true;
    if (this.peers.get(peer.id) === peer) this.peers.delete(peer.id);
    this.metrics?.peers.dec({ kind: peer.kind });
    if (peer.node && this.byKey.get(peer.node.key) === peer) this.byKey.delete(peer.node.key);
    const update: PeerUpdate = { kind: how, name: peer.name, peerKind: peer.kind, key: peer.node?.key ?? null };
    const text = JSON.stringify({ type: 'peers', updates: [update] } satisfies ServerMessage);
    if (peer.kind === 'client') {
      for (const agentName of peer.tunnels.keys()) {
        this.tunnelsByAgent.get(agentName)?.delete(peer);
        this.paths.delete(`${peer.name}\n${agentName}`);
        const agent = this.find('agent', agentName);
        if (agent && peer.node) this.sendText(agent, text, 'peers');
      }
    } else if (peer.node) {
      for (const client of this.tunnelsByAgent.get(peer.name) ?? []) this.sendText(client, text, 'peers');
    }
  }

  /** One text frame from a peer. Closes the connection on malformed input or abuse. */
  handleText(peer: Peer, text: string): void {
    if (peer.closed) return;
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

  private dispatch(peer: Peer, msg: ClientMessage): void {
    switch (msg.type) {
      case 'node':
        return this.publish(peer, msg.node);
      case 'tunnel':
        return this.openTunnel(peer, msg.agent);
      case 'untunnel':
        return this.closeTunnel(peer, msg.agent, 'closed by the client');
      case 'path':
        return this.reportPath(peer, msg.peer, msg.path);
    }
  }

  private publish(peer: Peer, node: Node): void {
    if (peer.node && peer.node.key !== node.key) {
      return peer.link.close(CloseCode.policy, 'node key changed; reconnect to register a new key');
    }
    if (!peer.node) {
      const holder = this.byKey.get(node.key);
      if (holder && holder !== peer) {
        return peer.link.close(CloseCode.policy, 'this node key belongs to another connected peer');
      }
      this.byKey.set(node.key, peer);
      peer.keyBytes = Buffer.from(node.key, 'hex');
      this.hooks.nodeKeyRegistered?.(peer, node.key);
    }
    peer.node = node;
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
    client.tunnels.set(agentName, this.now());
    let set = this.tunnelsByAgent.get(agentName);
    if (!set) this.tunnelsByAgent.set(agentName, (set = new Set()));
    set.add(client);
    this.send(client, { type: 'tunnel', agent: agentName, status: this.status(agentName) });
    const agent = this.find('agent', agentName);
    if (agent?.node) this.send(client, { type: 'peers', updates: [nodeUpdate(agent)] });
    if (agent && client.node) this.send(agent, { type: 'peers', updates: [nodeUpdate(client)] });
  }

  /** Ends a tunnel: the client is told why, the agent sees the client go. */
  closeTunnel(client: Peer, agentName: string, reason: string): void {
    if (!client.tunnels.delete(agentName)) return;
    this.tunnelsByAgent.get(agentName)?.delete(client);
    this.paths.delete(`${client.name}\n${agentName}`);
    this.send(client, { type: 'tunnel', agent: agentName, status: 'closed', reason });
    const agent = this.find('agent', agentName);
    if (agent && client.node) {
      this.send(agent, {
        type: 'peers',
        updates: [{ kind: 'disconnected', name: client.name, peerKind: 'client', key: client.node.key }],
      });
    }
  }

  /** Applies a changed allow list to a connected client: tunnels no longer allowed end. */
  setAllow(client: Peer, allow: ReadonlySet<string>): void {
    client.allow = allow;
    for (const agentName of [...client.tunnels.keys()]) {
      if (!allow.has(agentName)) this.closeTunnel(client, agentName, 'no longer allowed');
    }
  }

  private reportPath(reporter: Peer, key: string, path: Path): void {
    const other = this.byKey.get(key);
    if (!other || !this.haveTunnel(reporter, other)) {
      return this.send(reporter, { type: 'error', code: 'no-tunnel', message: 'path reported for a peer without a tunnel' });
    }
    const client = reporter.kind === 'client' ? reporter : other;
    const agent = reporter.kind === 'client' ? other : reporter;
    const id = `${client.name}\n${agent.name}`;
    const entry = this.paths.get(id) ?? { client: null, agent: null };
    entry[reporter.kind] = path;
    this.paths.set(id, entry);
    this.hooks.pathReported?.(reporter, other, path);
  }

  /**
   * One relay frame from a peer: `[destination key][payload]`. Forwarded as
   * `[source key][payload]` in the same buffer, never read, only between tunnel peers.
   */
  handleBinary(peer: Peer, frame: Buffer): void {
    if (peer.closed) return;
    if (frame.length > NODE_KEY_BYTES + MAX_RELAY_PAYLOAD) {
      return peer.link.close(CloseCode.tooBig, `relay payload larger than ${MAX_RELAY_PAYLOAD} bytes`);
    }
    if (frame.length < NODE_KEY_BYTES) return peer.link.close(CloseCode.policy, 'relay frame shorter than a 32-byte key');
    if (!peer.keyBytes) return peer.link.close(CloseCode.policy, 'publish your node before sending relay datagrams');
    const dest = this.byKey.get(bytesToKey(frame));
    if (!dest || !this.haveTunnel(peer, dest)) return this.drop('no-tunnel');
    const payloadBytes = frame.length - NODE_KEY_BYTES;
    if (!peer.relay.take(this.now(), payloadBytes)) return this.drop('rate');
    // A receiver that does not keep up loses datagrams instead of growing our memory.
    if (dest.link.bufferedAmount() > this.limits.maxRelayBuffered) return this.drop('slow');
    frame.set(peer.keyBytes, 0);
    dest.link.sendBinary(frame);
    this.metrics?.relayDatagrams.inc();
    this.metrics?.relayBytes.inc(payloadBytes);
  }

  private drop(reason: string): void {
    this.metrics?.relayDrops.inc({ reason });
  }

  private haveTunnel(a: Peer, b: Peer): boolean {
    if (a.kind === 'client' && b.kind === 'agent') return a.tunnels.has(b.name);
    if (a.kind === 'agent' && b.kind === 'client') return b.tunnels.has(a.name);
    return false;
  }

  private tunnelPeers(peer: Peer): Peer[] {
    if (peer.kind === 'agent') return [...(this.tunnelsByAgent.get(peer.name) ?? [])];
    const out: Peer[] = [];
    for (const agentName of peer.tunnels.keys()) {
      const agent = this.find('agent', agentName);
      if (agent) out.push(agent);
    }
    return out;
  }

  private status(agentName: string): 'open' | 'waiting' {
    return this.find('agent', agentName)?.node ? 'open' : 'waiting';
  }

  private send(peer: Peer, msg: ServerMessage): void {
    this.sendText(peer, JSON.stringify(msg), msg.type);
  }

  private sendText(peer: Peer, text: string, type: string): void {
    if (peer.closed) return;
    peer.link.sendText(text);
    this.metrics?.messages.inc({ direction: 'out', type });
  }

  // ---- views for the HTTP API ----

  peersView(viewer: Viewer): PeerView[] {
    const out: PeerView[] = [];
    for (const p of this.peers.values()) {
      if (!this.visible(viewer, p)) continue;
      out.push({ name: p.name, kind: p.kind, connectedAt: p.connectedAt, remote: p.remote, node: p.node });
    }
    return out;
  }

  tunnelsView(viewer: Viewer): TunnelView[] {
    const out: TunnelView[] = [];
    for (const p of this.peers.values()) {
      if (p.kind !== 'client') continue;
      for (const [agent, since] of p.tunnels) {
        const mine =
          viewer.kind === 'admin' ||
          (viewer.kind === 'client' && viewer.name === p.name) ||
          (viewer.kind === 'agent' && viewer.name === agent);
        if (!mine) continue;
        const paths = this.paths.get(`${p.name}\n${agent}`) ?? { client: null, agent: null };
        out.push({ client: p.name, agent, since, agentOnline: this.find('agent', agent) !== undefined, paths: { ...paths } });
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
  return { kind: 'node', name: p.name, peerKind: p.kind, node: p.node! };
}

/** WebSocket close reasons are limited to 123 bytes. */
export function truncate(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 110).toString() + '...';
}
