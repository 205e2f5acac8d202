// The node's one UDP socket and everything that shares it: STUN (endpoint discovery and
// netcheck), disco (finding and keeping direct paths to peers) and, above this layer, data.
// Datagrams are told apart by their first bytes: STUN has its top two bits 0 and the magic
// cookie, disco starts with "TVd1", data (UDX) with 0xff.
//
// Peers come from the coordinator: only a key it vouched for (upsertPeer) may make us answer a
// ping. The relay is the coordinator's too; this layer sees it only as a RelayTransport.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { StunClient, type StunTarget } from '../stun/client.js';
import { looksLikeStun } from '../stun/message.js';
import { Netchecker, type NetcheckReport } from '../netcheck/index.js';
import { DiscoSealer, looksLikeDisco, type DiscoMessage } from '../disco/index.js';
import type { NodeKey } from '../identity/node-key.js';
import { formatEndpoint } from '../net/endpoint.js';
import { PeerPaths, type PeerPathsOptions } from './peer-paths.js';
import { RELAY, samePath, splitEndpoint, type Path } from './path.js';
import { interfaceIPv4Addresses, mergeEndpoints } from './endpoints.js';

/** How relayed datagrams leave this node (the coordinator's WebSocket, above this layer). */
export interface RelayTransport {
  send(peerKey: string, payload: Uint8Array): boolean;
}

export interface MagicSockOptions {
  readonly key: NodeKey;
  readonly relay: RelayTransport;
  /** Local UDP port (0: any). */
  readonly port?: number;
  readonly bindAddress?: string;
  /** False for relay-only operation (--disable-direct, or the server's --block-direct). */
  readonly directAllowed?: boolean;
  /** The addresses to offer as local candidates; the machine's IPv4 interfaces by default. */
  readonly localAddresses?: () => readonly string[];
  readonly logger?: Logger;
  /** Overrides for the path timers (tests). */
  readonly paths?: Partial<Omit<PeerPathsOptions, 'directAllowed'>>;
  /** How often the engine looks at its timers, in ms. */
  readonly tickMs?: number;
}

export interface PingResult {
  readonly path: Path;
  readonly latencyMs: number;
}

export interface MagicSockEvents {
  /** The path to a peer changed. */
  path: [peerKey: string, path: Path];
  /** Our candidate endpoints changed and should be republished. */
  endpoints: [endpoints: string[]];
  /** A datagram for the layer above (not STUN, not disco), from a trusted peer's path. */
  data: [peerKey: string | null, payload: Buffer, from: string | null];
}

interface Peer {
  readonly key: string;
  readonly paths: PeerPaths;
  path: Path;
}

interface UserPing {
  readonly resolve: (r: PingResult) => void;
  readonly path: Path;
  readonly sentAt: number;
  readonly timer: NodeJS.Timeout;
}

const MAX_OBSERVED_SELF = 4;

export class MagicSock extends EventEmitter<MagicSockEvents> {
  readonly stun: StunClient;
  readonly netchecker: Netchecker;
  private readonly sealer: DiscoSealer;
  private readonly peers = new Map<string, Peer>();
  private readonly userPings = new Map<string, UserPing>();
  private stunServers: StunTarget[] = [];
  private reflexive: string[] = [];
  private observedSelf: string[] = [];
  private published: string[] = [];
  private directAllowed: boolean;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly options: MagicSockOptions,
  ) {
    super();
    this.log = options.logger ?? silentLogger;
    this.directAllowed = options.directAllowed ?? true;
    this.sealer = new DiscoSealer(options.key);
    this.stun = new StunClient(socket);
    const port = socket.address().port;
    this.netchecker = new Netchecker({
      v4: { stun: this.stun, send: (b, p, a) => this.sendRaw(b, p, a), local: () => ({ address: '0.0.0.0', port }) },
    });
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 25);
  }

  static async open(options: MagicSockOptions): Promise<MagicSock> {
    const socket = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? 0, options.bindAddress ?? '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new MagicSock(socket, options);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get endpoints(): readonly string[] {
    return this.published;
  }

  setStunServers(servers: readonly StunTarget[]): void {
    this.stunServers = [...servers];
  }

  setDirectAllowed(allowed: boolean): void {
    this.directAllowed = allowed;
  }

  get isDirectAllowed(): boolean {
    return this.directAllowed;
  }

  /**
   * Learns our reflexive addresses with one Binding transaction per STUN server (not a full
   * netcheck: this is on the path to the first connection), and recomputes the endpoint list.
   * Emits 'endpoints' if it changed. Returns the list.
   */
  async refreshEndpoints(timeoutMs = 1500): Promise<string[]> {
    if (this.directAllowed && this.stunServers.length > 0) {
      const results = await Promise.all(
        this.stunServers.map((s) =>
          this.stun.binding(s, { timeoutMs, rtoMs: Math.min(250, this.stun.rtoFor(s)) }).then(
            (r) => formatEndpoint(r.mapped.address, r.mapped.port),
            () => null,
          ),
        ),
      );
      this.reflexive = [...new Set(results.filter((r): r is string => r !== null))];
    }
    return this.recomputeEndpoints();
  }

  /** A full netcheck on this socket (RFC 5780 tests, hairpinning), for diagnosis. */
  runNetcheck(timeoutMs = 3000): Promise<NetcheckReport> {
    return this.netchecker.run(this.stunServers, { timeoutMs });
  }

  /** A peer the coordinator vouched for, with its published endpoints. */
  upsertPeer(key: string, endpoints: readonly string[]): void {
    let peer = this.peers.get(key);
    const now = performance.now();
    if (!peer) {
      peer = {
        key,
        paths: new PeerPaths({ directAllowed: this.directAllowed, ...this.options.paths }),
        path: RELAY,
      };
      this.peers.set(key, peer);
      peer.paths.setPublished(endpoints);
      this.punch(peer, now);
      return;
    }
    if (peer.paths.setPublished(endpoints)) this.punch(peer, now);
  }

  removePeer(key: string): void {
    this.peers.delete(key);
    this.sealer.forget(key);
  }

  hasPeer(key: string): boolean {
    return this.peers.has(key);
  }

  pathOf(key: string): Path {
    const p = this.peers.get(key);
    return p ? p.paths.current(performance.now()) : RELAY;
  }

  /** A datagram the coordinator relayed to us. */
  handleRelay(fromKey: string, payload: Buffer): void {
    if (looksLikeDisco(payload)) this.onDisco(payload, null);
    else if (this.peers.has(fromKey)) this.emit('data', fromKey, payload, null);
  }

  /** Pings a peer over its current path; resolves with the path and round trip, or null on timeout. */
  ping(key: string, timeoutMs = 2000): Promise<PingResult | null> {
    const peer = this.peers.get(key);
    if (!peer) return Promise.resolve(null);
    const path = peer.paths.current(performance.now());
    const txid = randomBytes(12);
    const id = txid.toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.userPings.delete(id);
        resolve(null);
      }, timeoutMs);
      this.userPings.set(id, { resolve, path, sentAt: performance.now(), timer });
      this.sendDisco(peer.key, path, { type: 'ping', txid });
    });
  }

  /** Forgets every path (the network changed): mappings may be gone; punch again. */
  networkChanged(): void {
    const now = performance.now();
    for (const p of this.peers.values()) {
      p.paths.reset(now);
      this.punch(p, now);
    }
  }

  /** Sends a data datagram to a peer over its current path. */
  sendData(key: string, payload: Uint8Array): boolean {
    const peer = this.peers.get(key);
    if (!peer) return false;
    const path = peer.paths.current(performance.now());
    if (path.kind === 'relay') return this.options.relay.send(key, payload);
    const ep = splitEndpoint(path.endpoint);
    if (!ep) return false;
    this.sendRaw(payload, ep.port, ep.address);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const u of this.userPings.values()) clearTimeout(u.timer);
    this.stun.close();
    this.socket.close();
  }

  // ------------------------------------------------------------------------------------------

  private recomputeEndpoints(): string[] {
    const local = this.directAllowed ? (this.options.localAddresses ?? interfaceIPv4Addresses)() : [];
    const list = this.directAllowed ? mergeEndpoints(local, this.port, this.reflexive, this.observedSelf) : [];
    if (list.join(',') !== this.published.join(',')) {
      this.published = list;
      this.emit('endpoints', list);
    }
    return list;
  }

  /** Starts a punching burst to the peer and asks it, through the relay, to punch back. */
  private punch(peer: Peer, now: number): void {
    if (!this.directAllowed) return;
    peer.paths.startBurst(now);
    if (this.published.length > 0) {
      const endpoints = this.published.map(splitEndpoint).filter((e): e is { address: string; port: number } => e !== null);
      this.sendDisco(peer.key, RELAY, { type: 'call-me-maybe', endpoints });
    }
  }

  private tick(): void {
    const now = performance.now();
    for (const peer of this.peers.values()) {
      for (const endpoint of peer.paths.due(now)) this.sendPing(peer, endpoint, now);
      const path = peer.paths.current(now);
      if (!samePath(path, peer.path)) {
        const wasDirect = peer.path.kind === 'direct';
        peer.path = path;
        this.log.info({ peer: peer.key.slice(0, 8), path }, 'path changed');
        this.emit('path', peer.key, path);
        // A lost direct path: punch again at once, and re-learn our mapping in case it moved.
        if (wasDirect && path.kind === 'relay') {
          this.punch(peer, now);
          void this.refreshEndpoints().catch(() => undefined);
        }
      }
    }
  }

  private sendPing(peer: Peer, endpoint: string, now: number): void {
    const txid = randomBytes(12);
    peer.paths.pingSent(txid.toString('hex'), endpoint, now);
    this.sendDisco(peer.key, { kind: 'direct', endpoint }, { type: 'ping', txid });
  }

  private sendDisco(key: string, path: Path, msg: DiscoMessage): void {
    const sealed = this.sealer.seal(key, msg);
    if (path.kind === 'relay') {
      this.options.relay.send(key, sealed);
      return;
    }
    const ep = splitEndpoint(path.endpoint);
    if (ep) this.sendRaw(sealed, ep.port, ep.address);
  }

  private sendRaw(buf: Uint8Array, port: number, address: string): void {
    if (this.closed) return;
    // The callback turns send errors (no route, ICMP unreachable) into silence, not 'error'.
    this.socket.send(buf, port, address, () => undefined);
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    if (looksLikeStun(msg)) {
      if (!this.stun.handleDatagram(msg, rinfo)) this.netchecker.handleDatagram(msg);
      return;
    }
    const from = formatEndpoint(rinfo.address, rinfo.port);
    if (looksLikeDisco(msg)) {
      if (this.directAllowed) this.onDisco(msg, from);
      return;
    }
    this.emit('data', null, msg, from);
  }

  /** A sealed disco packet, from a direct address or (from === null) through the relay. */
  private onDisco(buf: Buffer, from: string | null): void {
    const opened = this.sealer.open(buf, (k) => this.peers.has(k));
    if (!opened) return;
    const peer = this.peers.get(opened.sender)!;
    const m = opened.message;
    const now = performance.now();
    switch (m.type) {
      case 'ping': {
        const src = from ? splitEndpoint(from)! : { address: '0.0.0.0', port: 0 };
        this.sendDisco(peer.key, from ? { kind: 'direct', endpoint: from } : RELAY, { type: 'pong', txid: m.txid, src });
        if (from) {
          // Its ping got through from `from`: ping back there now, which opens our NAT for it
          // and (on the hard-NAT side's peer) answers the port its ping really came from.
          peer.paths.observed(from);
          if (peer.paths.current(now).kind !== 'direct') this.sendPing(peer, from, now);
        }
        return;
      }
      case 'pong': {
        const id = Buffer.from(m.txid).toString('hex');
        const user = this.userPings.get(id);
        if (user) {
          this.userPings.delete(id);
          clearTimeout(user.timer);
          user.resolve({ path: from ? { kind: 'direct', endpoint: from } : RELAY, latencyMs: now - user.sentAt });
        }
        if (from) {
          peer.paths.pongReceived(id, from, now);
          this.noteObservedSelf(formatEndpoint(m.src.address, m.src.port));
        }
        return;
      }
      case 'call-me-maybe': {
        if (!this.directAllowed) return;
        peer.paths.setPublished(m.endpoints.map((e) => formatEndpoint(e.address, e.port)), 'call-me-maybe');
        peer.paths.startBurst(now);
        return;
      }
    }
  }

  /** An address a peer saw us at: a candidate for other peers too (hard NATs show several). */
  private noteObservedSelf(endpoint: string): void {
    if (this.observedSelf.includes(endpoint) || this.published.includes(endpoint)) return;
    this.observedSelf = [endpoint, ...this.observedSelf].slice(0, MAX_OBSERVED_SELF);
    this.recomputeEndpoints();
  }
}
