// One connected node, as the server sees it: which identity it belongs to, the node it published,
// the tunnels it asked for (clients) and its rate budgets. A process is a node; an identity (a
// person, a workspace) may have several, each with its own connection and its own Peer.
import { type Node, type Path, type PeerKind, type StreamCarriers } from '../coordination/protocol.js';
import { newChallengeNonce } from '../coordination/key-proof.js';
import { MAX_BATCH_BYTES } from '../coordination/relay-batch.js';
import { TokenBucket } from './rate-limit.js';

/** How the hub reaches one connected node. */
export interface PeerLink {
  sendText(text: string): void;
  sendBinary(frame: Buffer): void;
  /** The node reads and writes relay batches (relay frame format 2, coordination/relay-batch.ts). */
  readonly relayBatches?: boolean;
  /** Bytes queued for this node and not yet written to the socket. */
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
  /** Live nodes per client identity; the next one is refused. */
  readonly maxNodesPerClient: number;
}

/** The paths both ends of one tunnel reported last. */
export interface TunnelPaths {
  client: Path | null;
  agent: Path | null;
}

export interface Tunnel {
  readonly since: number;
  readonly paths: TunnelPaths;
  /** The round trip each side measured on its path last (ms); null until it reports one. */
  readonly rttMs: { client: number | null; agent: number | null };
  /** For a relayed path, why, as each side reported it; null otherwise. */
  readonly reasons: { client: string | null; agent: string | null };
  /** The tunnel's streams by carrier, as each side reported them; null until it does. */
  readonly streams: { client: StreamCarriers | null; agent: StreamCarriers | null };
}

interface RateBuckets {
  readonly messages: TokenBucket;
  readonly relay: TokenBucket;
  readonly strayRelay: TokenBucket;
}

/** An agent's tunnels: agents ask for none (the hub refuses them), so they all share this one. */
const NO_TUNNELS: Map<string, Tunnel> = new (class extends Map<string, Tunnel> {
  override set(): this {
    throw new Error('agents have no tunnels');
  }
})();

/** Relay frames to no tunnel peer a node may send: 20/s sustained, 200 at once. */
const STRAY_RELAY_PER_SEC = 20;
const STRAY_RELAY_BURST = 200;

let nextConnection = 1;

/**
 * Every node of every other replica is mirrored here as a Peer (replica/mirror.ts), so a Peer is
 * kept small: what only a connection of this process uses (its rate budgets, its key proof's
 * nonce, its key as bytes for relaying) is made the first time it is used, never for a mirror
 * that is only routed to.
 */
export class Peer {
  /** Unique per connection in this process: tells two nodes of one identity apart in logs. */
  readonly connection = nextConnection++;
  node: Node | null = null;
  /** For client nodes: agent name -> the tunnel this node asked for. Agents share one empty map. */
  readonly tunnels: Map<string, Tunnel>;
  closed = false;
  /** The server is closing this connection: what it still sends is not read. */
  closing = false;
  /**
   * The replica this node is connected to, or null for this process's own connections. A node of
   * another replica is mirrored here (replica/mirror.ts) so that its tunnel peers here hear of it.
   */
  replica: string | null = null;
  private buckets: RateBuckets | null = null;
  private nonce: string | null = null;
  private keyBuffer: Buffer | null = null;

  constructor(
    readonly identityId: number,
    readonly kind: PeerKind,
    readonly name: string,
    readonly link: PeerLink,
    /** For clients: the agents this identity may reach. Replaced when the rules change. */
    public allow: ReadonlySet<string>,
    readonly connectedAt: number,
    readonly remote: string | null,
    private readonly limits: HubLimits,
  ) {
    this.tunnels = kind === 'client' ? new Map() : NO_TUNNELS;
  }

  /** Coordination messages from this node. */
  get messages(): TokenBucket {
    return this.rateBuckets().messages;
  }

  /** Relayed payload bytes from this node. */
  get relay(): TokenBucket {
    return this.rateBuckets().relay;
  }

  /** Relay frames to no tunnel peer: a small allowance, then the node is disconnected. */
  get strayRelay(): TokenBucket {
    return this.rateBuckets().strayRelay;
  }

  /** The nonce this connection's key proof must cover (key-proof.ts). */
  get challengeNonce(): string {
    return (this.nonce ??= newChallengeNonce());
  }

  /**
   * The published node key as bytes (relay frames carry it), null before the node publishes.
   * Its own allocation, not a slice of Node's shared 8 KiB buffer pool: a key kept for the life
   * of a connection would otherwise keep a whole pool slab alive with it.
   */
  get keyBytes(): Buffer | null {
    if (!this.node) return null;
    if (!this.keyBuffer) {
      this.keyBuffer = Buffer.allocUnsafeSlow(this.node.key.length / 2);
      this.keyBuffer.write(this.node.key, 'hex');
    }
    return this.keyBuffer;
  }

  private rateBuckets(): RateBuckets {
    if (this.buckets) return this.buckets;
    // Full at connection time, as if made then: the budgets of a node start when it connects.
    const { limits, connectedAt: at } = this;
    return (this.buckets = {
      messages: new TokenBucket(limits.messagesPerSec, limits.messagesPerSec * 2, at),
      // At least one full relay batch at once: a smaller bucket could never pass one.
      relay: new TokenBucket(limits.relayBytesPerSec, Math.max(limits.relayBytesPerSec, MAX_BATCH_BYTES), at),
      strayRelay: new TokenBucket(STRAY_RELAY_PER_SEC, STRAY_RELAY_BURST, at),
    });
  }

  /** The identity: "client:laptop". Several nodes may share it. */
  get identity(): string {
    return `${this.kind}:${this.name}`;
  }

  /** This node, for logs: "client:laptop#12 (3f9a0c1e)". */
  get id(): string {
    return `${this.identity}#${this.connection}${this.node ? ` (${this.node.key.slice(0, 8)})` : ''}`;
  }
}
