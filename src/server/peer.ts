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

/** Relay frames to no tunnel peer a node may send: 20/s sustained, 200 at once. */
const STRAY_RELAY_PER_SEC = 20;
const STRAY_RELAY_BURST = 200;

let nextConnection = 1;

export class Peer {
  /** Unique per connection in this process: tells two nodes of one identity apart in logs. */
  readonly connection = nextConnection++;
  node: Node | null = null;
  keyBytes: Buffer | null = null;
  /** For client nodes: agent name -> the tunnel this node asked for. */
  readonly tunnels = new Map<string, Tunnel>();
  readonly messages: TokenBucket;
  readonly relay: TokenBucket;
  /** Relay frames to no tunnel peer: a small allowance, then the node is disconnected. */
  readonly strayRelay: TokenBucket;
  closed = false;
  /** The server is closing this connection: what it still sends is not read. */
  closing = false;
  /**
   * The replica this node is connected to, or null for this process's own connections. A node of
   * another replica is mirrored here (replica/mirror.ts) so that its tunnel peers here hear of it.
   */
  replica: string | null = null;
  /** The nonce this connection's key proof must cover (key-proof.ts). */
  readonly challengeNonce = newChallengeNonce();

  constructor(
    readonly identityId: number,
    readonly kind: PeerKind,
    readonly name: string,
    readonly link: PeerLink,
    /** For clients: the agents this identity may reach. Replaced when the rules change. */
    public allow: ReadonlySet<string>,
    readonly connectedAt: number,
    readonly remote: string | null,
    limits: HubLimits,
  ) {
    this.messages = new TokenBucket(limits.messagesPerSec, limits.messagesPerSec * 2, connectedAt);
    // At least one full relay batch at once: a smaller bucket could never pass one.
    this.relay = new TokenBucket(limits.relayBytesPerSec, Math.max(limits.relayBytesPerSec, MAX_BATCH_BYTES), connectedAt);
    this.strayRelay = new TokenBucket(STRAY_RELAY_PER_SEC, STRAY_RELAY_BURST, connectedAt);
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
