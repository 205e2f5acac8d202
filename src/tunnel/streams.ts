// Encrypted streams between two nodes, over whichever path the engine chose. StreamManager is
// the entry point; its parts, one concept each:
//   opening.ts       opening a stream (client) and accepting it (agent), in one round trip
//   carrier-moves.ts moving a stream to a new UDX carrier when the path changes
//   lane-offers.ts   offering and accepting a TCP lane for a stream on a direct path
// Their control messages (control.ts) ride disco as opaque sealed payloads; each request is
// resent until answered, within a deadline (resend.ts).
import type { Duplex } from 'node:stream';
import type { UDXStream } from 'udx-native';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { MagicSock } from '../magicsock/magicsock.js';
import { samePath, type Path } from '../net/path.js';
import type { NodeKey } from '../identity/node-key.js';
import { decodeControl, encodeControl, type StreamControl } from './control.js';
import { CarrierMoves } from './carrier-moves.js';
import { LaneOffers } from './lane-offers.js';
import { laneEndpoint } from './tcp-lane.js';
import { RelayLanes, type RelayLaneDialer } from './relay-lanes.js';
import { DEFAULT_LIMITS, Opening, StreamOpenError, type AcceptDecision, type StreamLimits } from './opening.js';
import type { StreamRequest } from './request.js';
import type { CarrierKind, StreamContext } from './stream-context.js';
import { streamKey, type OpenerRecord, type StreamRecord } from './stream-record.js';

export { DEFAULT_LIMITS, IDLE_TIMEOUT_MS, KEEPALIVE_MS, StreamOpenError, type AcceptDecision, type StreamLimits } from './opening.js';
export type { CarrierKind } from './stream-context.js';
export type { RelayLaneDialer } from './relay-lanes.js';

export interface StreamManagerOptions {
  readonly magicsock: MagicSock;
  readonly key: NodeKey;
  readonly logger?: Logger;
  readonly limits?: Partial<StreamLimits>;
  /** Agents only: decides on incoming requests from a peer (null: this node accepts none). */
  readonly accept?: ((peerKey: string, request: StreamRequest) => Promise<AcceptDecision>) | null;
  /** Whether the peer may open streams to us at all (an agent accepts clients only). */
  readonly mayOpen?: (peerKey: string) => boolean;
  /** Resend interval and deadline for control messages (ms). */
  readonly resendMs?: number;
  readonly deadlineMs?: number;
  /** Whether to offer (client) and accept (agent) TCP lanes on direct paths. Default true. */
  readonly tcpLane?: boolean;
  /** How long a TCP lane may take to open, from the offer (ms). Default 3000. */
  readonly laneTimeoutMs?: number;
  /**
   * How to ask the coordination server for a relay lane (relay-lanes.ts) for streams on the relay
   * path; without it relayed streams stay on relayed UDX, and offers of one are not answered.
   */
  readonly relayLane?: RelayLaneDialer | null;
  /** How long a relay lane may take to open, from the offer (ms). Default 5000. */
  readonly relayLaneTimeoutMs?: number;
}

export interface StreamManagerEvents {
  /** A stream's carrier moved to a new path, or onto a lane. */
  carrier: [peerKey: string, sid: bigint, path: Path, kind: CarrierKind];
}

export class StreamManager extends EventEmitter<StreamManagerEvents> {
  private readonly sessions = new Map<string, StreamRecord>();
  private readonly usedIds = new Set<number>();
  private readonly opening: Opening;
  private readonly carriers: CarrierMoves;
  private readonly lanes: LaneOffers;
  private readonly relayLanes: RelayLanes;
  private closed = false;

  constructor(private readonly options: StreamManagerOptions) {
    super();
    const ms = options.magicsock;
    const ctx: StreamContext = {
      magicsock: ms,
      log: options.logger ?? silentLogger,
      resendMs: options.resendMs ?? 250,
      deadlineMs: options.deadlineMs ?? 10_000,
      sessions: this.sessions,
      isClosed: () => this.closed,
      count: (peer) => this.count(peer),
      track: (r) => this.track(r),
      send: (peer, path, m) => {
        ms.sendControl(peer, path, encodeControl(m));
      },
      newCarrier: () => {
        const id = this.allocId();
        const carrier = ms.udx.createStream(id);
        carrier.once('close', () => this.usedIds.delete(id)); // ids in use only: the set stays bounded
        return carrier;
      },
      connectCarrier: (carrier, peer, remoteId, path) => this.connectCarrier(carrier, peer, remoteId, path),
      moved: (peer, sid, path, kind) => this.emit('carrier', peer, sid, path, kind),
    };
    this.lanes = new LaneOffers(ctx, {
      enabled: options.tcpLane ?? true,
      timeoutMs: options.laneTimeoutMs ?? 3000,
      backToUdx: (r) => this.carriers.switchTo(r, ms.pathOf(r.peer)),
      // No direct TCP lane from the relay: a relay lane, if the stream is still on the relay.
      noRelayedLane: (r, path) => {
        if (samePath(ms.pathOf(r.peer), path)) this.relayLanes.offer(r, path);
      },
    });
    this.relayLanes = new RelayLanes(ctx, this.lanes, {
      dial: options.relayLane ?? null,
      timeoutMs: options.relayLaneTimeoutMs ?? 5000,
      toDirect: (r) => this.carriers.switchTo(r, ms.pathOf(r.peer)),
    });
    this.carriers = new CarrierMoves(ctx, (r, path) => this.offerLane(r, path));
    this.opening = new Opening(ctx, {
      key: options.key,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      accept: options.accept ?? null,
      mayOpen: options.mayOpen ?? (() => false),
      opened: (r, path) => this.opened(r, path),
    });
    ms.on('control', (peer, payload, path) => {
      const m = decodeControl(payload);
      if (m) this.onControl(peer, m, path);
    });
    ms.on('path', (peer, path) => this.onPath(peer, path));
  }

  /** Streams open now, per peer (for status and limits). */
  count(peerKey?: string): number {
    if (peerKey === undefined) return this.sessions.size;
    let n = 0;
    for (const r of this.sessions.values()) if (r.peer === peerKey) n++;
    return n;
  }

  /** How many streams to a peer a TCP lane carries now, and how many UDX. */
  carriersTo(peerKey: string): { tcp: number; udx: number } {
    const n = { tcp: 0, udx: 0 };
    for (const r of this.sessions.values()) if (r.peer === peerKey) n[r.lane && r.session.isCurrent(r.lane) ? 'tcp' : 'udx']++;
    return n;
  }

  /** What carries a stream opened or accepted here now (null: not one of ours, or closed). */
  carrierKind(stream: Duplex): CarrierKind | null {
    for (const r of this.sessions.values()) if (r.session === stream) return r.lane && r.laneKind && r.session.isCurrent(r.lane) ? r.laneKind : 'udx';
    return null;
  }

  /** The remote end of the TCP lane carrying a stream now ("ip:port"), or null (none, or not a TCP lane). */
  laneEndpoint(stream: Duplex): string | null {
    for (const r of this.sessions.values()) {
      if (r.session === stream && r.lane && r.laneKind === 'tcp' && r.session.isCurrent(r.lane)) return laneEndpoint(r.lane);
    }
    return null;
  }

  /**
   * The direct TCP path to a peer whose UDP path is the relay: a TCP lane that carries one of its
   * streams now, or a spare one ready for the next (lane-offers.ts); null if there is none.
   */
  tcpPathTo(peerKey: string): Path | null {
    if (this.options.magicsock.pathOf(peerKey).kind !== 'relay') return null;
    for (const r of this.sessions.values()) {
      if (r.peer !== peerKey || !r.lane || r.laneKind !== 'tcp' || !r.session.isCurrent(r.lane)) continue;
      const endpoint = laneEndpoint(r.lane);
      if (endpoint) return { kind: 'direct', endpoint, transport: 'tcp' };
    }
    const spare = this.lanes.spares.readyTo(peerKey);
    return spare ? { kind: 'direct', endpoint: spare, transport: 'tcp' } : null;
  }

  /**
   * Client: tries a direct TCP path to a peer on the relay (a spare lane to its vouched IP), and
   * resolves with it, or null when none opens within the lane timeout (or none may be tried).
   */
  async openTcpPath(peerKey: string): Promise<Path | null> {
    const have = this.tcpPathTo(peerKey);
    if (have || this.closed) return have;
    this.lanes.spares.replenish(peerKey, this.options.magicsock.pathOf(peerKey));
    // Polled: the spare settles within its timeout either way, and this runs once per ping.
    while (this.lanes.spares.opening(peerKey) && !this.closed) await new Promise((res) => setTimeout(res, 50));
    return this.tcpPathTo(peerKey);
  }

  /** Opens an encrypted stream to a peer (we are the client). */
  open(peerKey: string, request: StreamRequest): Promise<Duplex> {
    return this.opening.open(peerKey, request);
  }

  /** The coordinator says the peer is gone: its streams end now, not after a timeout. */
  peerGone(peerKey: string): void {
    for (const [k, r] of this.sessions) {
      if (r.peer === peerKey) {
        r.session.destroy(new Error('the peer disconnected'));
        this.sessions.delete(k);
      }
    }
    this.lanes.spares.peerGone(peerKey);
    this.opening.failOpens(peerKey, new StreamOpenError('the peer disconnected'));
  }

  close(): void {
    this.closed = true;
    this.lanes.spares.close();
    this.opening.failOpens(null, new StreamOpenError('closing'));
    for (const r of this.sessions.values()) r.session.closeNow();
    this.sessions.clear();
  }

  // ------------------------------------------------------------------------------------------

  private allocId(): number {
    for (;;) {
      const id = randomBytes(4).readUInt32BE(0);
      if (id !== 0 && !this.usedIds.has(id)) {
        this.usedIds.add(id);
        return id;
      }
    }
  }

  /** Connects a carrier to the peer over `path`; one that cannot be connected is destroyed here. */
  private async connectCarrier(carrier: UDXStream, peer: string, remoteId: number, path: Path): Promise<boolean> {
    const addr = await this.options.magicsock.streamAddress(peer, path);
    if (!addr || this.closed) {
      carrier.destroy();
      return false;
    }
    carrier.connect(addr.socket, remoteId, addr.port, addr.host);
    return true;
  }

  private track(r: StreamRecord): void {
    const key = streamKey(r.peer, r.sid);
    this.sessions.set(key, r);
    r.session.on('close', () => {
      r.laneAbort.abort();
      if (r.role === 'client') {
        this.lanes.cancel(r);
        this.relayLanes.cancel(r);
      }
      if (this.sessions.get(key) === r) this.sessions.delete(key);
      this.opening.ended(r);
      if (r.role === 'client') this.carriers.cancel(r);
    });
  }

  /** Client: a stream opened on `path`; the path may have changed while the agent was answering. */
  private opened(r: OpenerRecord, path: Path): void {
    const now = this.options.magicsock.pathOf(r.peer);
    if (!samePath(now, path)) this.carriers.switchTo(r, now);
    else this.offerLane(r, path);
  }

  /**
   * Client: the stream runs on a UDX carrier over `path`; a lane of the path's kind may carry it
   * faster: a spare one at once if there is one (spare-lanes.ts), else one offered now.
   */
  private offerLane(r: OpenerRecord, path: Path): void {
    const spare = r.lane ? null : this.lanes.spares.take(r.peer, path);
    if (!spare) {
      // On the relay, a direct TCP lane to the peer's vouched IP (lane-offers.ts) and a relay lane
      // are offered at once: the stream would otherwise run on relayed datagrams for as long as
      // the TCP lane takes to fail (its whole timeout, 3 s, where the peer's NAT drops the SYNs).
      // Whichever proves first carries the stream; a TCP lane that proves later still takes it
      // over (adopt() in lane-offers.ts), losslessly, as any carrier move.
      this.lanes.offer(r, path);
      if (path.kind !== 'direct') this.relayLanes.offer(r, path);
      return;
    }
    this.options.logger?.debug({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, 'stream starts on a spare TCP lane');
    this.lanes.adopt(r, spare.sock, path, 'tcp');
    this.lanes.spares.sendClaim(r.peer, r.sid, spare, path);
  }

  private onControl(peer: string, m: StreamControl, path: Path): void {
    if (this.closed) return;
    switch (m.type) {
      case 'stream-open':
        void this.opening.onOpen(peer, m, path);
        return;
      case 'stream-accept':
        void this.opening.onAccept(peer, m);
        return;
      case 'stream-refuse':
        return this.opening.onRefuse(peer, m);
      case 'carrier':
        void this.carriers.onCarrier(peer, m, path);
        return;
      case 'carrier-ack':
        void this.carriers.onCarrierAck(peer, m);
        return;
      case 'tcp-lane':
        void this.lanes.onOffer(peer, m, path);
        return;
      case 'tcp-lane-ack':
        return this.lanes.onAck(peer, m);
      case 'relay-lane':
        return this.relayLanes.onOffer(peer, m, path);
      case 'relay-lane-ack':
        return this.relayLanes.onAck(peer, m);
      case 'lane-claim':
        return this.lanes.onClaim(peer, m);
    }
  }

  private onPath(peer: string, path: Path): void {
    for (const r of this.sessions.values()) {
      if (r.peer !== peer || r.role !== 'client') continue;
      this.relayLanes.cancel(r);
      // A TCP lane that still carries the stream stays when only the UDP path died (a network
      // that blocks UDP, not TCP): the lane's own silence watch says when it dies too, and then
      // the stream moves to the path of that moment (lane-offers.ts).
      if (path.kind === 'relay' && r.lane && r.laneKind === 'tcp' && r.session.isCurrent(r.lane)) {
        this.carriers.cancel(r);
        continue;
      }
      this.carriers.switchTo(r, path);
    }
  }
}
