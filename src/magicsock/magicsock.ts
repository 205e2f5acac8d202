// The node's one UDP socket and everything that shares it: STUN (endpoint discovery and
// netcheck), disco (finding and keeping direct paths to peers) and data (UDX streams, for the
// tunnel layer above). The socket is a udx-native socket: UDX packets (first byte 0xff) go
// straight to their streams in native code, and every other datagram comes up as a 'message':
// STUN has its top two bits 0 and the magic cookie, disco starts with "TVd1".
//
// Peers come from the coordinator: only a key it vouched for (upsertPeer) may make us answer a
// ping, and disco goes only where probe-aim.ts says is plausible for that peer (its published
// endpoints, where its authentic packets came from, its vouched IP), within probe-budget.ts's
// budget per identity and per node: sendDirect is the one way out to a direct address. The
// relay is the coordinator's too; this layer sees it only as a RelayTransport, and carries
// relayed UDX packets through one RelayShim per peer. Our own candidate endpoints come
// from Candidates; port prediction (a hard NAT facing an easy one) is the PortPredictor's, which
// sends through this socket's sealer and hands back what reaches its own sockets.
import UDX, { type UDXSocket, type UdxAddress } from 'udx-native';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { StunClient, type StunTarget } from '../stun/client.js';
import { looksLikeStun } from '../stun/message.js';
import { Netchecker, type NetcheckReport, type NetcheckSocket } from '../netcheck/index.js';
import { DiscoSealer, looksLikeDisco, type DiscoMessage } from '../disco/index.js';
import type { NodeKey } from '../identity/node-key.js';
import { canonicalEndpoint, formatEndpoint, splitEndpoint } from '../net/endpoint.js';
import { PeerPaths, type PeerPathsOptions } from './peer-paths.js';
import { RELAY, samePath, type Path } from '../net/path.js';
import { Candidates } from './candidates.js';
import { bindNodeSocket, reachableStunServers, socketFamilies } from './dual-stack.js';
import { RelayShim, type RelayTransport } from './relay-shim.js';
import { PortPredictor, type PortPredictionPlan } from './port-prediction.js';
import { ProbeBudget, type ProbeLimits } from './probe-budget.js';
import { aimBirthday, aimCallMeMaybe, aimPredictionTargets, mayAim, normalizeIp } from './probe-aim.js';
import { PortMapKeeper, type PortMapKeeperOptions } from '../portmap/keeper.js';
import type { PortMapFindings } from '../portmap/survey.js';
import { PinholeKeeper, type PinholeKeeperOptions } from '../portmap/pinhole.js';

/** How long after STUN's answers the first publication still waits for the gateway's mapping. */
const MAPPING_GRACE_MS = 50;

export interface MagicSockOptions {
  readonly key: NodeKey;
  readonly relay: RelayTransport;
  /** Local UDP port (0: any). */
  readonly port?: number;
  /** Default: "::", dual-stack (IPv4 and IPv6 on one socket), or 0.0.0.0 where IPv6 is off. */
  readonly bindAddress?: string;
  /** False for relay-only operation (--disable-direct, or the server's --block-direct). */
  readonly directAllowed?: boolean;
  /**
   * The addresses to offer as local candidates: by default the machine's IPv4 interfaces and its
   * global and unique-local IPv6 ones (those the socket's families carry).
   */
  readonly localAddresses?: () => readonly string[];
  readonly logger?: Logger;
  /** Overrides for the path timers (tests). */
  readonly paths?: Partial<Omit<PeerPathsOptions, 'directAllowed'>>;
  /** How often the engine looks at its timers, in ms. */
  readonly tickMs?: number;
  /** The clock, in ms (performance.now by default; tests inject one). */
  readonly now?: () => number;
  /** Overrides for the probe budget (tests). */
  readonly budget?: ProbeLimits;
  /**
   * Ask the default gateway to map the socket's port (PCP, NAT-PMP, UPnP IGD), with these
   * overrides (tests: the gateway and its ports); off when absent or false.
   */
  readonly portMapping?: Omit<PortMapKeeperOptions, 'internalPort' | 'onChange' | 'logger'> | false;
  /**
   * Ask the IPv6 gateway by PCP to open the firewall for our IPv6 address and port (a pinhole),
   * with these overrides; off when absent or false, and on a socket without IPv6.
   */
  readonly pinhole?: Omit<PinholeKeeperOptions, 'internalPort' | 'onChange' | 'logger'> | false;
}

/** What the coordinator told us about a peer key besides its endpoints. */
export interface PeerVouch {
  /** The peer's identity: budgets are per identity, whichever of its keys sends (default: the key). */
  readonly group?: string;
  /** The IP the coordinator saw the key's connection come from (its `seenFrom`), or null. */
  readonly vouchedIp?: string | null;
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
  /** An opaque payload (the tunnel's control message) from a trusted peer, with the path it came over. */
  control: [peerKey: string, payload: Uint8Array, path: Path];
}

interface Peer {
  readonly key: string;
  readonly paths: PeerPaths;
  path: Path;
  shim: RelayShim | null;
  group: string;
  vouchedIp: string | null;
  published: Set<string>;
  /** Where its authentic packets arrived from, most recent last (at most MAX_OBSERVED). */
  readonly observed: Map<string, number>;
  /** Round trip through the relay (ms, smoothed), from pings answered through it; null until one is. */
  relayLatencyMs: number | null;
}

const MAX_OBSERVED = 32;

interface UserPing {
  readonly resolve: (r: PingResult | null) => void;
  readonly path: Path;
  readonly sentAt: number;
  readonly timer: NodeJS.Timeout;
}

export class MagicSock extends EventEmitter<MagicSockEvents> {
  /** The UDX instance that owns the socket; the tunnel layer makes its streams with it. */
  readonly udx: UDX;
  readonly stun: StunClient;
  readonly netchecker: Netchecker;
  private readonly sealer: DiscoSealer;
  private readonly peers = new Map<string, Peer>();
  private readonly userPings = new Map<string, UserPing>();
  private stunServers: StunTarget[] = [];
  private readonly candidates: Candidates;
  private published: string[] = [];
  private directAllowed: boolean;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly predictor: PortPredictor;
  private readonly budget: ProbeBudget;
  private readonly now: () => number;
  /** Direct disco packets not sent: aimed where nobody vouched, or over budget. */
  private droppedProbes = 0;
  /** Keeps a port mapping on the gateway, when port mapping is on. */
  private readonly portMapper: PortMapKeeper | null;
  private portMapperClosed: Promise<void> = Promise.resolve();
  /** Keeps an IPv6 pinhole open on the IPv6 gateway, when asked to and the socket carries IPv6. */
  private readonly pinholer: PinholeKeeper | null;
  /** The IP families the node's socket carries (both on a dual-stack socket). */
  readonly families: readonly (4 | 6)[];

  private constructor(
    udx: UDX,
    /** The node's socket; the tunnel layer connects its streams to it. */
    readonly socket: UDXSocket,
    private readonly options: MagicSockOptions,
  ) {
    super();
    this.udx = udx;
    this.log = options.logger ?? silentLogger;
    this.directAllowed = options.directAllowed ?? true;
    this.now = options.now ?? (() => performance.now());
    this.budget = new ProbeBudget(options.budget);
    this.sealer = new DiscoSealer(options.key);
    this.candidates = new Candidates(options.localAddresses);
    this.predictor = new PortPredictor(
      udx,
      {
        seal: (key, m) => this.sealer.seal(key, m),
        sendRelayed: (key, m) => this.sendDisco(key, RELAY, m),
        send: (b, p, a, via, key) => void this.sendDirect(key, formatEndpoint(a, p), b, 'prediction', via),
        mayStart: (key) => {
          const peer = this.peers.get(key);
          return peer !== undefined && this.budget.beginPrediction(peer.group, this.now());
        },
        receive: (msg, from, via) => {
          if (looksLikeDisco(msg) && this.directAllowed) this.onDisco(msg, from, null, via);
        },
        directAllowed: () => this.directAllowed,
        currentPath: (key) => this.peers.get(key)?.paths.current(this.now()) ?? null,
      },
      this.log,
    );
    this.stun = new StunClient({ send: (b, p, a) => this.sendRaw(b, p, a) });
    const port = this.port;
    this.families = socketFamilies(socket.address().host);
    this.portMapper = options.portMapping
      ? new PortMapKeeper({
          ...options.portMapping,
          internalPort: port,
          logger: this.log,
          onChange: (m) => {
            // Published at once: a mapping usually comes before any STUN answer.
            this.candidates.setMapped(m ? { address: m.externalAddress, port: m.externalPort } : null);
            this.recomputeEndpoints();
          },
        })
      : null;
    this.pinholer =
      options.pinhole && this.families.includes(6)
        ? new PinholeKeeper({
            ...options.pinhole,
            internalPort: port,
            logger: this.log,
            onChange: (p) => {
              this.candidates.setPinholed(p ? formatEndpoint(p.address, p.port) : null);
              this.recomputeEndpoints();
            },
          })
        : null;
    // One socket serves both families: netcheck sees it as the IPv4 socket and the IPv6 one.
    const netSock = (address: string): NetcheckSocket => ({ stun: this.stun, send: (b, p, a) => this.sendRaw(b, p, a), local: () => ({ address, port }) });
    this.netchecker = new Netchecker(
      {
        ...(this.families.includes(4) ? { v4: netSock('0.0.0.0') } : {}),
        ...(this.families.includes(6) ? { v6: netSock('::') } : {}),
      },
      this.portMapper ? { portMapping: () => this.portMappingFindings() } : {},
    );
    socket.on('message', (msg, from) => this.onDatagram(msg, from));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 25);
  }

  static async open(options: MagicSockOptions): Promise<MagicSock> {
    const udx = new UDX();
    const socket = bindNodeSocket(udx, options.port ?? 0, options.bindAddress);
    // Bulk streams want more than the default socket buffers; failure here is not fatal.
    try {
      socket.setRecvBufferSize(4 << 20);
      socket.setSendBufferSize(4 << 20);
    } catch {
      /* keep the defaults */
    }
    return new MagicSock(udx, socket, options);
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
    if (allowed === this.directAllowed) return;
    this.directAllowed = allowed;
    for (const p of this.peers.values()) p.paths.setDirectAllowed(allowed);
    this.recomputeEndpoints();
  }

  get isDirectAllowed(): boolean {
    return this.directAllowed;
  }

  /** The IP the coordinator saw the peer's connection come from (probe-aim.ts), or null. */
  vouchedIpOf(peerKey: string): string | null {
    return this.peers.get(peerKey)?.vouchedIp ?? null;
  }

  /**
   * Learns our reflexive addresses with one Binding transaction per STUN server (not a full
   * netcheck: this is on the path to the first connection), and recomputes the endpoint list.
   * Emits 'endpoints' if it changed. Returns the list.
   */
  async refreshEndpoints(timeoutMs = 1500): Promise<string[]> {
    const servers = reachableStunServers(this.stunServers, this.families, this.candidates.localFamilies());
    if (this.directAllowed && servers.length > 0) await this.candidates.learnReflexive(this.stun, servers, timeoutMs);
    // The mapped candidate goes first when the gateway has answered by the time STUN has, give or
    // take a moment: a router that maps answers in milliseconds, as a STUN server does. A gateway
    // that stays silent (most routers here) must not hold every start back by its whole probe
    // budget: a mapping that comes later is published as an update, still first in the list.
    await this.portMapper?.settled(MAPPING_GRACE_MS);
    return this.recomputeEndpoints();
  }

  /** A full netcheck on this socket (RFC 5780 tests, hairpinning), for diagnosis. */
  runNetcheck(timeoutMs = 3000): Promise<NetcheckReport> {
    return this.netchecker.run(this.stunServers, { timeoutMs });
  }

  /** What the port-mapping keeper found (after its first attempt), for netcheck. */
  private async portMappingFindings(): Promise<PortMapFindings> {
    const keeper = this.portMapper!;
    await keeper.ready;
    const { gateway } = keeper.lastProbe;
    // Every protocol's answer, not just the preferred one the keeper stopped at.
    const probe = keeper.lastProbe.probe ? await keeper.lastProbe.probe.complete : null;
    const none = { available: false as const, reason: gateway ? 'no answer' : 'no default gateway' };
    const mapping = keeper.mapping;
    const withAddress = <T extends PortMapFindings['pcp']>(k: 'pcp' | 'natpmp' | 'upnp', st: T): PortMapFindings['pcp'] =>
      st.available && mapping?.protocol === k ? { available: true, externalAddress: mapping.externalAddress } : st;
    return {
      gateway,
      pcp: withAddress('pcp', probe?.pcp ?? none),
      natpmp: withAddress('natpmp', probe?.natpmp ?? none),
      upnp: withAddress('upnp', probe?.upnp ?? none),
      mapping,
      ipv6Pinhole: this.pinholer ? await this.pinholer.ready.then(() => this.pinholer!.status) : null,
    };
  }

  /** Whether our mapped candidate is trusted (null: no mapping or nothing to compare it with), for logs and tests. */
  get portMappingTrust(): { trusted: boolean | null; reason: string | null } {
    return this.candidates.mappedTrust();
  }

  /** Our IPv6 endpoint a PCP pinhole opened to anyone ("IPv6 firewall opened by PCP"), or null. */
  get pinholedEndpoint(): string | null {
    return this.candidates.pinholedEndpoint;
  }

  /** Resolves once a clean close has deleted the port mapping (or there was none). */
  get whenPortMappingClosed(): Promise<void> {
    return this.portMapperClosed;
  }

  /** A peer the coordinator vouched for, with its published endpoints, identity and seen-from IP. */
  upsertPeer(key: string, published: readonly string[], vouch: PeerVouch = {}): void {
    // Packets arrive from canonical IPv6 text; a peer's own spelling of its address must match it.
    const endpoints = published.map(canonicalEndpoint);
    let peer = this.peers.get(key);
    const now = this.now();
    const vouchedIp = normalizeIp(vouch.vouchedIp);
    if (!peer) {
      peer = {
        key,
        paths: new PeerPaths({ directAllowed: this.directAllowed, ...this.options.paths }),
        path: RELAY,
        shim: null,
        group: vouch.group ?? key,
        vouchedIp,
        published: new Set(endpoints),
        observed: new Map(),
        relayLatencyMs: null,
      };
      this.peers.set(key, peer);
      peer.paths.setPublished(endpoints);
      this.punch(peer, now);
      return;
    }
    if (vouch.group !== undefined) peer.group = vouch.group;
    if (vouch.vouchedIp !== undefined) peer.vouchedIp = vouchedIp;
    peer.published = new Set(endpoints);
    if (peer.paths.setPublished(endpoints)) this.punch(peer, now);
  }

  /** Direct disco packets this node did not send because nobody vouched for the address or the budget was spent. */
  get probesDropped(): number {
    return this.droppedProbes;
  }

  removePeer(key: string): void {
    this.peers.get(key)?.shim?.close();
    this.peers.delete(key);
    this.sealer.forget(key);
    this.predictor.forget(key);
  }

  hasPeer(key: string): boolean {
    return this.peers.has(key);
  }

  /**
   * The peer's path as last announced by the 'path' event (the engine's tick decides it), so a
   * caller that reads it and then listens for changes misses none and sees none twice.
   */
  pathOf(key: string): Path {
    return this.peers.get(key)?.path ?? RELAY;
  }

  /**
   * Round trip of the peer's current path (ms, smoothed): a direct path's from the engine's pings;
   * a relayed one's from pings answered through the relay (ping()), null until one was.
   */
  latencyOf(key: string): number | null {
    const peer = this.peers.get(key);
    if (!peer) return null;
    return peer.path.kind === 'relay' ? peer.relayLatencyMs : peer.paths.bestLatency();
  }

  /** A datagram the coordinator relayed to us. */
  handleRelay(fromKey: string, payload: Buffer): void {
    if (looksLikeDisco(payload)) {
      this.onDisco(payload, null, fromKey);
      return;
    }
    const peer = this.peers.get(fromKey);
    if (peer && payload[0] === 0xff) this.shimFor(peer).deliver(payload);
  }

  /**
   * Where a UDX stream to this peer should send for `path`: the peer's endpoint, or the
   * loopback shim that carries its packets over the relay.
   */
  async streamAddress(key: string, path: Path): Promise<{ host: string; port: number; socket: UDXSocket } | null> {
    const peer = this.peers.get(key);
    if (!peer) return null;
    if (path.kind === 'direct') {
      const ep = splitEndpoint(path.endpoint);
      // A path found by port prediction runs on the extra socket that found it.
      return ep ? { host: ep.address, port: ep.port, socket: this.predictor.socketFor(key, path.endpoint) ?? this.socket } : null;
    }
    const shim = this.shimFor(peer);
    await shim.ready;
    return { ...shim.address, socket: this.socket };
  }

  /**
   * Port prediction, hard side (planPortPrediction said when): opens many sockets towards the
   * peer's public endpoints and asks the peer to probe ours. Returns false when not started
   * (unknown peer, direct paths off, no targets, or tried within the last minute).
   */
  predictPorts(key: string, plan: PortPredictionPlan): boolean {
    const peer = this.peers.get(key);
    if (!peer) return false;
    // Our sockets aim only at the peer's endpoints on the IP the coordinator saw it at.
    const targets = aimPredictionTargets(plan.targets, peer.vouchedIp);
    return targets.length > 0 && this.predictor.start(key, { ...plan, targets });
  }

  /** Sends an opaque payload (the tunnel's control message), sealed, to a trusted peer over `path`. */
  sendControl(key: string, path: Path, payload: Uint8Array): boolean {
    if (!this.peers.has(key)) return false;
    this.sendDisco(key, path, { type: 'opaque', payload });
    return true;
  }

  /** Pings a peer over its current path; resolves with the path and round trip, or null on timeout. */
  ping(key: string, timeoutMs = 2000): Promise<PingResult | null> {
    const peer = this.peers.get(key);
    if (!peer) return Promise.resolve(null);
    const path = peer.paths.current(this.now());
    const txid = randomBytes(12);
    const id = txid.toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.userPings.delete(id);
        resolve(null);
      }, timeoutMs);
      this.userPings.set(id, { resolve, path, sentAt: this.now(), timer });
      this.sendDisco(peer.key, path, { type: 'ping', txid });
    });
  }

  /** Forgets every path (the network changed): mappings may be gone; punch again. */
  networkChanged(): void {
    this.portMapper?.networkChanged();
    this.pinholer?.networkChanged();
    const now = this.now();
    for (const p of this.peers.values()) {
      p.paths.reset(now);
      this.punch(p, now);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const u of this.userPings.values()) {
      clearTimeout(u.timer);
      u.resolve(null);
    }
    this.userPings.clear();
    for (const p of this.peers.values()) p.shim?.close();
    this.predictor.close();
    this.stun.close();
    // A clean close deletes our mapping on the router (bounded; it would expire anyway).
    if (this.portMapper || this.pinholer) this.portMapperClosed = Promise.all([this.portMapper?.close(), this.pinholer?.close()]).then(() => undefined);
    // Streams still ending would hold their socket (and the process) until the peer acknowledges,
    // up to UDX's timeout: a node that is closing abandons them.
    for (const st of [...this.socket.streams]) st.destroy();
    void this.socket.close().catch(() => undefined);
  }

  private shimFor(peer: Peer): RelayShim {
    if (!peer.shim) peer.shim = new RelayShim(peer.key, this.options.relay, this.port);
    return peer.shim;
  }

  // ------------------------------------------------------------------------------------------

  private recomputeEndpoints(): string[] {
    const list = this.directAllowed ? this.candidates.list(this.port, this.families) : [];
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
    // The burst's first round goes now, not at the next tick: up to a tick off the time to direct.
    this.sendDuePings(peer, now);
    if (this.published.length > 0) {
      const endpoints = this.published.map(splitEndpoint).filter((e): e is { address: string; port: number } => e !== null);
      this.sendDisco(peer.key, RELAY, { type: 'call-me-maybe', endpoints });
    }
  }

  private tick(): void {
    const now = this.now();
    for (const peer of this.peers.values()) {
      this.sendDuePings(peer, now);
      this.updatePath(peer, now);
    }
  }

  private sendDuePings(peer: Peer, now: number): void {
    for (const endpoint of peer.paths.due(now)) this.sendPing(peer, endpoint, now);
  }

  /** Announces the path the peer's state chose, if it changed (the tick, and a pong at once). */
  private updatePath(peer: Peer, now: number): void {
    const path = peer.paths.current(now);
    if (samePath(path, peer.path)) return;
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
    this.sendDirect(key, path.endpoint, sealed, 'probe', this.predictor.socketFor(key, path.endpoint));
  }

  /**
   * The one way disco leaves for a direct address: only to an address plausible for the peer
   * (probe-aim.ts), and within the budget (probe-budget.ts) unless the endpoint is the peer's
   * confirmed path. Port prediction spends its own attempt's allowance. Returns whether it went.
   */
  private sendDirect(key: string, endpoint: string, buf: Uint8Array, kind: 'probe' | 'prediction', via?: UDXSocket): boolean {
    const peer = this.peers.get(key);
    const ep = splitEndpoint(endpoint);
    if (!peer || !ep || !this.directAllowed) return false;
    const now = this.now();
    const ok =
      mayAim(endpoint, { published: peer.published, observed: peer.observed, vouchedIp: peer.vouchedIp }) &&
      (kind === 'prediction'
        ? this.budget.allowPrediction(peer.group, now)
        : peer.paths.confirmed(endpoint, now) || this.budget.allowProbe(peer.group, endpoint, buf.length, now));
    if (!ok) {
      this.droppedProbes++;
      return false;
    }
    this.sendRaw(buf, ep.port, ep.address, via);
    return true;
  }

  private sendRaw(buf: Uint8Array, port: number, address: string, via?: UDXSocket): void {
    if (this.closed) return;
    try {
      (via ?? this.socket).trySend(buf, port, address);
    } catch (err) {
      // A bad address or a closing socket: the sender's timers treat it as a lost packet.
      this.log.debug({ err: (err as Error).message, address, port }, 'send failed');
    }
  }

  private onDatagram(msg: Buffer, from: UdxAddress): void {
    if (looksLikeStun(msg)) {
      if (!this.stun.handleDatagram(msg, { address: from.host, port: from.port })) this.netchecker.handleDatagram(msg);
      return;
    }
    if (looksLikeDisco(msg) && this.directAllowed) this.onDisco(msg, formatEndpoint(from.host, from.port), null);
    // Anything else is not ours to answer: dropped.
  }

  /**
   * A sealed disco packet, from a direct address or (from === null) through the relay, where
   * the relay says which key sent it: the sealed sender must be that key.
   */
  private onDisco(buf: Buffer, from: string | null, relayedFrom: string | null, via?: UDXSocket): void {
    const opened = this.sealer.open(buf, (k) => this.peers.has(k) && (relayedFrom === null || k === relayedFrom));
    if (!opened) return;
    const peer = this.peers.get(opened.sender)!;
    const m = opened.message;
    const now = this.now();
    if (from) {
      // An authentic packet of this peer came from `from`: a plausible address to answer.
      peer.observed.delete(from);
      peer.observed.set(from, now);
      if (peer.observed.size > MAX_OBSERVED) peer.observed.delete(peer.observed.keys().next().value!);
    }
    // An authentic packet on one of the port-prediction sockets: that socket is the way to `from`.
    if (via && from) this.predictor.answered(peer.key, from, via);
    if (m.type === 'opaque') {
      this.emit('control', peer.key, m.payload, from ? { kind: 'direct', endpoint: from } : RELAY);
      return;
    }
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
          // Weighted as the direct paths' round trips are (peer-paths.ts).
          if (!from) peer.relayLatencyMs = peer.relayLatencyMs === null ? now - user.sentAt : 0.7 * peer.relayLatencyMs + 0.3 * (now - user.sentAt);
        }
        if (from) {
          peer.paths.pongReceived(id, from, now);
          // Addresses seen on a port-prediction socket belong to that socket, not to our node.
          if (!via) this.noteObservedSelf(formatEndpoint(m.src.address, m.src.port));
          // A pong may be the one that makes a path direct: say so now, not at the next tick.
          this.updatePath(peer, now);
        }
        return;
      }
      case 'birthday': {
        // Only through the relay, from the peer's own key, and only for the IP the coordinator
        // saw that key connect from: anything else would let a peer aim our probes at a victim.
        if (from === null && aimBirthday(m.ip, peer.vouchedIp)) this.predictor.probe(peer.key, peer.vouchedIp!);
        return;
      }
      case 'call-me-maybe': {
        if (!this.directAllowed) return;
        // Only endpoints the coordinator published, or on the IP it saw the peer at.
        const usable = aimCallMeMaybe(
          m.endpoints.map((e) => formatEndpoint(e.address, e.port)),
          { published: peer.published, vouchedIp: peer.vouchedIp },
        );
        if (usable.length === 0) return;
        peer.paths.setPublished(usable, 'call-me-maybe');
        peer.paths.startBurst(now);
        this.sendDuePings(peer, now);
        return;
      }
    }
  }

  /** An address a peer saw us at: a candidate for other peers too (hard NATs show several). */
  private noteObservedSelf(endpoint: string): void {
    if (this.candidates.observed(endpoint, this.published)) this.recomputeEndpoints();
  }
}
