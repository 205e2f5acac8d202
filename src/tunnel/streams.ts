// Encrypted streams between two nodes, over whichever path the engine chose.
//
// Opening (client -> agent), one round trip:
//   client: stream-open {sid, its UDX stream id, Noise IK message 1 carrying the request}
//   agent:  checks the client's key (proven by the handshake) is the peer the coordinator gave
//           it, checks the request, and answers stream-accept {sid, its UDX stream id, Noise
//           message 2} or stream-refuse {sid, reason}.
// Both then connect a UDX stream (the "carrier") to the other's id over the current path: the
// peer's endpoint, or the relay shim. The bytes go through a ResumableSession and secret-stream.
//
// When the client's path to the agent changes (relay -> direct, or a dead direct path -> relay),
// the client opens a new carrier on the new path (carrier / carrier-ack) and the session resends
// what was not acknowledged: the stream goes on without a reset or a lost byte. Control messages
// are disco messages (sealed, unreliable): each is resent until answered, within a deadline.
//
// Once a stream runs on a direct path, the client also tries a TCP lane (tcp-lane.ts): a direct
// TCP connection that carries the session instead of UDX, for throughput. If it cannot open, the
// stream stays on UDX; if it dies, the client moves the stream back to a UDX carrier.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import SecretStream, { type Handshake } from '@hyperswarm/secret-stream';
import type { UDXStream } from 'udx-native';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { MagicSock } from '../magicsock/magicsock.js';
import type { Path } from '../net/path.js';
import { splitEndpoint } from '../net/endpoint.js';
import { decodeControl, encodeControl, LANE_TOKEN_BYTES, type StreamControl } from './control.js';
import type { NodeKey } from '../identity/node-key.js';
import { ResumableSession } from './session.js';
import { closeWhenSilent, LaneListener, openLane, reserveLanePort } from './tcp-lane.js';
import { respond, StreamInitiator } from './noise.js';
import { streamRequest, streamResponse, type StreamRequest, type StreamResponse } from './request.js';

export interface StreamLimits {
  /** Streams one peer may have open on this node. */
  readonly maxStreamsPerPeer: number;
  /** Bytes a stream keeps for resending (its write buffer bound). */
  readonly maxUnackedBytes: number;
}

export const DEFAULT_LIMITS: StreamLimits = { maxStreamsPerPeer: 256, maxUnackedBytes: 4 << 20 };

/** The agent's decision on a request: accept and take the stream, or refuse with a reason. */
export type AcceptDecision = { readonly ok: true; readonly take: (stream: Duplex) => void } | { readonly ok: false; readonly error: string };

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
}

/** What carries a stream's bytes: a UDX stream (direct or relayed), or a TCP lane. */
export type CarrierKind = 'udx' | 'tcp';

/** Lanes exist only on direct paths. */
type DirectPath = Extract<Path, { kind: 'direct' }>;

export class StreamOpenError extends Error {
  override readonly name = 'StreamOpenError';
}

interface SessionRecord {
  readonly sid: bigint;
  readonly peer: string;
  readonly role: 'client' | 'agent';
  readonly session: ResumableSession;
  /** Client: the carrier switch in progress, if any. */
  switching: { carrier: UDXStream; timer: NodeJS.Timeout; path: Path } | null;
  /** Agent: carrier ids already answered, with the answer, so resends are answered again. */
  readonly answered: Map<number, StreamControl>;
  /** Agent: the accept message, resent if the client's open is resent. */
  accept: StreamControl | null;
  /** The encrypted stream the user reads and writes (its keepalive and idle timers live here). */
  secure: Duplex | null;
  /** The TCP lane carrying the stream now, if any. */
  lane: Socket | null;
  /** Client: the lane offer in progress. */
  laneOffer: { readonly token: Buffer; readonly path: DirectPath; port: number; timer: NodeJS.Timeout | null; dialing: boolean } | null;
  /** Agent: lane offers answered (by the client's token), so resends get the same answer. */
  readonly laneAnswers: Map<string, StreamControl | null>;
  /** Cancels lane attempts when the stream ends. */
  readonly laneAbort: AbortController;
}

interface PendingOpen {
  readonly carrier: UDXStream;
  readonly initiator: StreamInitiator;
  readonly resolve: (d: Duplex) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export interface StreamManagerEvents {
  /** A stream's carrier moved to a new path, or onto a TCP lane. */
  carrier: [peerKey: string, sid: bigint, path: Path, kind: CarrierKind];
}

/** Lane attempts a stream may make (agent: answer); a bound on what one peer can make us do. */
const MAX_LANE_ATTEMPTS = 16;
/** Agent: lane attempts (each a listener and a socket for up to the lane timeout) per peer at once. */
const MAX_LANES_OPENING_PER_PEER = 16;
/** After a lane to an endpoint fails, streams to it stay on UDX this long before trying again. */
const LANE_RETRY_AFTER_MS = 60_000;
/**
 * A lane on which nothing arrives for this long is dead (a NAT dropped its mapping, a firewall
 * its packets: TCP would take many minutes to say so). A live one always brings something: each
 * side sends an encrypted keepalive after KEEPALIVE_MS of silence. Well under the stream's own
 * idle timeout, so the stream moves back to UDX before it would be given up.
 */
const LANE_SILENT_MS = 8_000;

const sidKey = (peer: string, sid: bigint): string => `${peer}/${sid.toString(16)}`;

/**
 * Liveness of an open stream. A carrier to a peer that died (killed agent, vanished client) is
 * never noticed by an idle stream: nothing is in flight, and a peer "lost" by the coordinator is
 * kept, since it may still be reachable directly. So each side sends an encrypted empty message
 * after KEEPALIVE_MS of silence, and a stream that hears nothing for IDLE_TIMEOUT_MS is destroyed.
 * The timeout must outlast a path change (about 6.5 s to notice a dead direct path, then the
 * carrier switch).
 */
export const KEEPALIVE_MS = 5_000;
export const IDLE_TIMEOUT_MS = 15_000;

function encrypt(isInitiator: boolean, session: ResumableSession, handshake: Handshake): Duplex {
  const secure = new SecretStream(isInitiator, session, { handshake, keepAlive: KEEPALIVE_MS });
  // secret-stream 6.9 has no `timeout` constructor option: setTimeout() arms it.
  secure.setTimeout(IDLE_TIMEOUT_MS);
  // A peer that has ended its side sends no more keepalives: its silence is no longer a sign of death.
  session.once('end', () => secure.setTimeout(0));
  return secure;
}

export class StreamManager extends EventEmitter<StreamManagerEvents> {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly opening = new Map<string, PendingOpen>();
  /** Agent: opens being decided (the target is being connected), to ignore their resends. */
  private readonly deciding = new Set<string>();
  private readonly usedIds = new Set<number>();
  /** Agent: streams that ended recently, so a late copy of their stream-open is not a new stream. */
  private readonly finished = new Set<string>();
  private readonly limits: StreamLimits;
  private readonly log: Logger;
  private readonly resendMs: number;
  private readonly deadlineMs: number;
  private readonly tcpLane: boolean;
  private readonly laneTimeoutMs: number;
  /** Client: endpoints where a lane failed, and until when not to try again. */
  private readonly laneFailed = new Map<string, number>();
  /** Agent: lane attempts in progress, per peer. */
  private readonly lanesOpening = new Map<string, number>();
  private closed = false;

  constructor(private readonly options: StreamManagerOptions) {
    super();
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.log = options.logger ?? silentLogger;
    this.resendMs = options.resendMs ?? 250;
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.tcpLane = options.tcpLane ?? true;
    this.laneTimeoutMs = options.laneTimeoutMs ?? 3000;
    options.magicsock.on('control', (peer, payload, path) => {
      const m = decodeControl(payload);
      if (m) this.onControl(peer, m, path);
    });
    options.magicsock.on('path', (peer, path) => this.onPath(peer, path));
  }

  /** Streams open now, per peer (for status and limits). */
  count(peerKey?: string): number {
    if (peerKey === undefined) return this.sessions.size;
    let n = 0;
    for (const r of this.sessions.values()) if (r.peer === peerKey) n++;
    return n;
  }

  /** What carries a stream opened or accepted here now (null: not one of ours, or closed). */
  carrierKind(stream: Duplex): CarrierKind | null {
    for (const r of this.sessions.values()) if (r.secure === stream) return r.lane && r.session.isCurrent(r.lane) ? 'tcp' : 'udx';
    return null;
  }

  /** Opens an encrypted stream to a peer (we are the client). */
  open(peerKey: string, request: StreamRequest): Promise<Duplex> {
    const ms = this.options.magicsock;
    if (!ms.hasPeer(peerKey)) return Promise.reject(new StreamOpenError('no tunnel to that peer'));
    if (this.count(peerKey) >= this.limits.maxStreamsPerPeer) {
      return Promise.reject(new StreamOpenError(`too many open streams to this peer (${this.limits.maxStreamsPerPeer})`));
    }
    const sid = randomBytes(8).readBigUInt64BE(0);
    const id = this.allocId();
    const carrier = ms.udx.createStream(id);
    const initiator = new StreamInitiator(this.options.key, Buffer.from(peerKey, 'hex'), Buffer.from(JSON.stringify(request)));
    const key = sidKey(peerKey, sid);
    return new Promise<Duplex>((resolve, reject) => {
      const started = Date.now();
      const send = (): void => {
        if (Date.now() - started > this.deadlineMs) {
          this.failOpen(key, new StreamOpenError(`the agent did not answer within ${this.deadlineMs} ms`));
          return;
        }
        ms.sendControl(peerKey, ms.pathOf(peerKey), encodeControl({ type: 'stream-open', sid, carrier: id, handshake: initiator.message }));
      };
      const timer = setInterval(send, this.resendMs);
      this.opening.set(key, { carrier, initiator, resolve, reject, timer });
      send();
    });
  }

  /** The coordinator says the peer is gone: its streams end now, not after a timeout. */
  peerGone(peerKey: string): void {
    for (const [k, r] of this.sessions) {
      if (r.peer === peerKey) {
        r.session.destroy(new Error('the peer disconnected'));
        this.sessions.delete(k);
      }
    }
    for (const k of [...this.opening.keys()]) if (k.startsWith(`${peerKey}/`)) this.failOpen(k, new StreamOpenError('the peer disconnected'));
  }

  close(): void {
    this.closed = true;
    for (const k of [...this.opening.keys()]) this.failOpen(k, new StreamOpenError('closing'));
    // The encrypted streams first: their keepalive and idle timers would otherwise outlive us.
    for (const r of this.sessions.values()) {
      r.secure?.destroy();
      r.session.closeNow();
    }
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

  private failOpen(key: string, err: Error): void {
    const p = this.opening.get(key);
    if (!p) return;
    this.opening.delete(key);
    clearInterval(p.timer);
    p.carrier.destroy();
    p.reject(err);
  }

  private async connectCarrier(carrier: UDXStream, peer: string, remoteId: number, path: Path): Promise<boolean> {
    const addr = await this.options.magicsock.streamAddress(peer, path);
    if (!addr || this.closed) return false;
    carrier.connect(addr.socket, remoteId, addr.port, addr.host);
    return true;
  }

  private track(r: SessionRecord): void {
    const key = sidKey(r.peer, r.sid);
    this.sessions.set(key, r);
    r.session.on('close', () => {
      r.laneAbort.abort();
      if (r.laneOffer?.timer) clearInterval(r.laneOffer.timer);
      r.laneOffer = null;
      if (this.sessions.get(key) === r) this.sessions.delete(key);
      if (r.role === 'agent') {
        this.finished.add(key);
        // Bounded: the oldest entries go first (a Set iterates in insertion order).
        if (this.finished.size > 4096) this.finished.delete(this.finished.values().next().value as string);
      }
      if (r.switching) {
        clearInterval(r.switching.timer);
        r.switching.carrier.destroy();
      }
    });
  }

  private onControl(peer: string, m: StreamControl, path: Path): void {
    if (this.closed) return;
    switch (m.type) {
      case 'stream-open':
        void this.onOpen(peer, m, path);
        return;
      case 'stream-accept':
        void this.onAccept(peer, m, path);
        return;
      case 'stream-refuse':
        return this.onRefuse(peer, m.sid, m.reason);
      case 'carrier':
        void this.onCarrier(peer, m, path);
        return;
      case 'carrier-ack':
        void this.onCarrierAck(peer, m);
        return;
      case 'tcp-lane':
        void this.onLaneOffer(peer, m, path);
        return;
      case 'tcp-lane-ack':
        return this.onLaneAck(peer, m);
    }
  }

  // ---- agent side ----

  private refuse(peer: string, path: Path, sid: bigint, reason: string): void {
    this.options.magicsock.sendControl(peer, path, encodeControl({ type: 'stream-refuse', sid, reason }));
  }

  private async onOpen(peer: string, m: Extract<StreamControl, { type: 'stream-open' }>, path: Path): Promise<void> {
    const key = sidKey(peer, m.sid);
    const existing = this.sessions.get(key);
    if (existing) {
      if (existing.accept) this.options.magicsock.sendControl(peer, path, encodeControl(existing.accept));
      return;
    }
    if (this.deciding.has(key) || this.finished.has(key)) return;
    const accept = this.options.accept;
    if (!accept || !(this.options.mayOpen?.(peer) ?? false)) return this.refuse(peer, path, m.sid, 'this peer may not open streams here');
    if (this.count(peer) + this.deciding.size >= this.limits.maxStreamsPerPeer) {
      return this.refuse(peer, path, m.sid, `too many open streams (${this.limits.maxStreamsPerPeer})`);
    }
    let start;
    try {
      start = respond(this.options.key, m.handshake);
    } catch {
      return; // not a valid handshake for our key: drop silently, like any bad packet
    }
    // The handshake proves the client's key; it must be the peer whose sealed message this was.
    if (Buffer.from(start.remote).toString('hex') !== peer) return this.refuse(peer, path, m.sid, 'stream key does not match the peer');
    let request: StreamRequest;
    try {
      request = streamRequest.parse(JSON.parse(Buffer.from(start.payload).toString('utf8')));
    } catch {
      return this.refuse(peer, path, m.sid, 'malformed request');
    }
    this.deciding.add(key);
    let decision: AcceptDecision;
    try {
      decision = await accept(peer, request);
    } catch (err) {
      decision = { ok: false, error: (err as Error).message };
    } finally {
      this.deciding.delete(key);
    }
    if (!decision.ok) return this.refuse(peer, path, m.sid, decision.error);
    if (this.closed || !this.options.magicsock.hasPeer(peer)) return;

    const id = this.allocId();
    const carrier = this.options.magicsock.udx.createStream(id);
    if (!(await this.connectCarrier(carrier, peer, m.carrier, path))) return;
    const session = new ResumableSession({ maxUnacked: this.limits.maxUnackedBytes });
    session.attach(carrier);
    const response: StreamResponse = { ok: true };
    const { message, handshake } = start.reply(Buffer.from(JSON.stringify(response)));
    const acceptMsg: StreamControl = { type: 'stream-accept', sid: m.sid, carrier: id, handshake: message };
    const r: SessionRecord = { sid: m.sid, peer, role: 'agent', session, switching: null, answered: new Map(), accept: acceptMsg, secure: null, ...noLane() };
    this.track(r);
    const secure = encrypt(false, session, handshake);
    r.secure = secure;
    this.options.magicsock.sendControl(peer, path, encodeControl(acceptMsg));
    this.log.debug({ peer: peer.slice(0, 8), sid: m.sid.toString(16), request }, 'stream accepted');
    decision.take(secure);
  }

  private async onCarrier(peer: string, m: Extract<StreamControl, { type: 'carrier' }>, path: Path): Promise<void> {
    const r = this.sessions.get(sidKey(peer, m.sid));
    if (!r || r.role !== 'agent') return this.refuse(peer, path, m.sid, 'unknown stream');
    const answered = r.answered.get(m.carrier);
    if (answered) {
      this.options.magicsock.sendControl(peer, path, encodeControl(answered));
      return;
    }
    if (r.answered.size >= 64) return this.refuse(peer, path, m.sid, 'too many carrier changes');
    const id = this.allocId();
    const carrier = this.options.magicsock.udx.createStream(id);
    const ack: StreamControl = { type: 'carrier-ack', sid: m.sid, carrier: id, yours: m.carrier };
    r.answered.set(m.carrier, ack);
    if (!(await this.connectCarrier(carrier, peer, m.carrier, path))) return;
    r.session.attach(carrier);
    this.options.magicsock.sendControl(peer, path, encodeControl(ack));
    setTimeout(() => r.session.retireOldCarriers(), 3000).unref();
    this.emit('carrier', peer, m.sid, path, 'udx');
  }

  // ---- client side ----

  private async onAccept(peer: string, m: Extract<StreamControl, { type: 'stream-accept' }>, _path: Path): Promise<void> {
    const key = sidKey(peer, m.sid);
    const p = this.opening.get(key);
    if (!p) return;
    let result;
    let response: StreamResponse;
    try {
      result = p.initiator.finish(m.handshake);
      response = streamResponse.parse(JSON.parse(Buffer.from(result.payload).toString('utf8')));
    } catch {
      return; // not from the agent we handshook with: keep waiting for the real answer
    }
    this.opening.delete(key);
    clearInterval(p.timer);
    if (!response.ok) {
      p.carrier.destroy();
      p.reject(new StreamOpenError(response.error));
      return;
    }
    const path = this.options.magicsock.pathOf(peer);
    if (!(await this.connectCarrier(p.carrier, peer, m.carrier, path))) {
      p.reject(new StreamOpenError('the tunnel closed'));
      return;
    }
    const session = new ResumableSession({ maxUnacked: this.limits.maxUnackedBytes });
    session.attach(p.carrier);
    const r: SessionRecord = { sid: m.sid, peer, role: 'client', session, switching: null, answered: new Map(), accept: null, secure: null, ...noLane() };
    this.track(r);
    r.secure = encrypt(true, session, result.handshake);
    p.resolve(r.secure);
    // The path may have changed while the agent was answering.
    const now = this.options.magicsock.pathOf(peer);
    if (now.kind !== path.kind || (now.kind === 'direct' && path.kind === 'direct' && now.endpoint !== path.endpoint)) this.switchCarrier(r, now);
    else this.offerLane(r, path);
  }

  private onRefuse(peer: string, sid: bigint, reason: string): void {
    const key = sidKey(peer, sid);
    if (this.opening.has(key)) {
      this.failOpen(key, new StreamOpenError(reason || 'refused'));
      return;
    }
    const r = this.sessions.get(key);
    // A stream whose bytes have all been delivered both ways has nothing to lose: the agent
    // closing its side first is not an error.
    if (r && r.role === 'client' && !r.session.settled) r.session.destroy(new Error(`the agent dropped the stream: ${reason}`));
  }

  private onPath(peer: string, path: Path): void {
    for (const r of this.sessions.values()) if (r.peer === peer && r.role === 'client') this.switchCarrier(r, path);
  }

  private switchCarrier(r: SessionRecord, path: Path): void {
    if (r.session.destroyed || r.session.settled) return;
    if (r.switching) {
      clearInterval(r.switching.timer);
      r.switching.carrier.destroy();
      r.switching = null;
    }
    const ms = this.options.magicsock;
    const id = this.allocId();
    const carrier = ms.udx.createStream(id);
    const started = Date.now();
    const send = (): void => {
      if (Date.now() - started > this.deadlineMs) {
        // No answer on the new path: keep the current carrier; the next path change tries again.
        if (r.switching?.carrier === carrier) {
          clearInterval(r.switching.timer);
          carrier.destroy();
          r.switching = null;
        }
        return;
      }
      ms.sendControl(r.peer, path, encodeControl({ type: 'carrier', sid: r.sid, carrier: id }));
    };
    r.switching = { carrier, timer: setInterval(send, this.resendMs), path };
    send();
  }

  private async onCarrierAck(peer: string, m: Extract<StreamControl, { type: 'carrier-ack' }>): Promise<void> {
    const r = this.sessions.get(sidKey(peer, m.sid));
    // Only the answer to the switch in progress counts; a late one for an abandoned switch names
    // a carrier of ours that no longer exists.
    if (!r || r.role !== 'client' || !r.switching || r.switching.carrier.id !== m.yours) return;
    const { carrier, timer, path } = r.switching;
    r.switching = null;
    clearInterval(timer);
    if (!(await this.connectCarrier(carrier, peer, m.carrier, path))) return;
    r.session.attach(carrier);
    setTimeout(() => r.session.retireOldCarriers(), 3000).unref();
    this.log.debug({ peer: peer.slice(0, 8), sid: m.sid.toString(16), path }, 'stream moved to a new carrier');
    this.emit('carrier', peer, m.sid, path, 'udx');
    this.offerLane(r, path);
  }

  // ---- TCP lanes ----

  /** Client: offers the agent a TCP lane for this stream, if the path is direct and none is open. */
  private offerLane(r: SessionRecord, path: Path): void {
    if (!this.tcpLane || this.closed || path.kind !== 'direct' || r.lane || r.laneOffer || r.session.destroyed || r.session.settled) return;
    const failedUntil = this.laneFailed.get(path.endpoint);
    if (failedUntil !== undefined && failedUntil > Date.now()) return;
    const offer: NonNullable<SessionRecord['laneOffer']> = { token: randomBytes(LANE_TOKEN_BYTES), path, port: 0, timer: null, dialing: false };
    r.laneOffer = offer;
    reserveLanePort().then(
      (port) => {
        if (r.laneOffer !== offer) return;
        offer.port = port;
        const started = Date.now();
        const send = (): void => {
          if (Date.now() - started > this.laneTimeoutMs) return this.laneDidNotOpen(r, offer, 'the agent did not answer');
          this.options.magicsock.sendControl(r.peer, path, encodeControl({ type: 'tcp-lane', sid: r.sid, port, token: offer.token }));
        };
        offer.timer = setInterval(send, this.resendMs);
        send();
      },
      (err: Error) => this.laneDidNotOpen(r, offer, err.message),
    );
  }

  private laneDidNotOpen(r: SessionRecord, offer: NonNullable<SessionRecord['laneOffer']>, why: string): void {
    if (r.laneOffer !== offer) return;
    if (offer.timer) clearInterval(offer.timer);
    r.laneOffer = null;
    this.noteLaneFailure(offer.path.endpoint);
    this.log.info({ peer: r.peer.slice(0, 8), endpoint: offer.path.endpoint, why }, 'no TCP lane; the stream stays on UDX');
  }

  private noteLaneFailure(endpoint: string): void {
    this.laneFailed.delete(endpoint);
    this.laneFailed.set(endpoint, Date.now() + LANE_RETRY_AFTER_MS);
    // Bounded: the oldest entries go first.
    if (this.laneFailed.size > 1024) this.laneFailed.delete(this.laneFailed.keys().next().value as string);
  }

  private onLaneAck(peer: string, m: Extract<StreamControl, { type: 'tcp-lane-ack' }>): void {
    const r = this.sessions.get(sidKey(peer, m.sid));
    const offer = r?.laneOffer;
    if (!r || r.role !== 'client' || !offer || offer.dialing) return;
    const ep = splitEndpoint(offer.path.endpoint);
    if (!ep) return;
    offer.dialing = true;
    if (offer.timer) clearInterval(offer.timer);
    const attempt = { localPort: offer.port, remoteAddress: ep.address, remotePort: m.port, remoteListenPort: m.listenPort, ownToken: offer.token, peerToken: m.token, role: 'client' as const, timeoutMs: this.laneTimeoutMs };
    openLane(attempt, r.laneAbort.signal).then(
      (sock) => {
        if (r.laneOffer === offer) r.laneOffer = null;
        this.adoptLane(r, sock, offer.path);
      },
      (err: Error) => this.laneDidNotOpen(r, offer, err.message),
    );
  }

  /** Agent: answers a lane offer with our port, listener and token, and starts connecting. */
  private async onLaneOffer(peer: string, m: Extract<StreamControl, { type: 'tcp-lane' }>, path: Path): Promise<void> {
    const r = this.sessions.get(sidKey(peer, m.sid));
    // Only over a direct path: its endpoint is where the client proved to be, and where we connect.
    if (!this.tcpLane || !r || r.role !== 'agent' || path.kind !== 'direct' || r.session.destroyed) return;
    const ep = splitEndpoint(path.endpoint);
    if (!ep) return;
    const id = Buffer.from(m.token).toString('hex');
    const answered = r.laneAnswers.get(id);
    if (answered !== undefined) {
      if (answered) this.options.magicsock.sendControl(peer, path, encodeControl(answered));
      return;
    }
    const opening = this.lanesOpening.get(peer) ?? 0;
    if (r.laneAnswers.size >= MAX_LANE_ATTEMPTS || opening >= MAX_LANES_OPENING_PER_PEER) return;
    r.laneAnswers.set(id, null);
    this.lanesOpening.set(peer, opening + 1);
    const done = (): void => {
      const n = (this.lanesOpening.get(peer) ?? 1) - 1;
      if (n > 0) this.lanesOpening.set(peer, n);
      else this.lanesOpening.delete(peer);
    };
    const [p, l] = await Promise.allSettled([reserveLanePort(), LaneListener.open()]);
    if (p.status === 'rejected' || l.status === 'rejected' || r.session.destroyed || this.closed) {
      if (l.status === 'fulfilled') l.value.close();
      return done();
    }
    const port = p.value;
    const listener = l.value;
    const ownToken = randomBytes(LANE_TOKEN_BYTES);
    const ack: StreamControl = { type: 'tcp-lane-ack', sid: m.sid, port, listenPort: listener.port, token: ownToken };
    r.laneAnswers.set(id, ack);
    this.options.magicsock.sendControl(peer, path, encodeControl(ack));
    const attempt = { localPort: port, remoteAddress: ep.address, remotePort: m.port, listener, ownToken, peerToken: m.token, role: 'agent' as const, timeoutMs: this.laneTimeoutMs };
    openLane(attempt, r.laneAbort.signal)
      .then(
        (sock) => this.adoptLane(r, sock, path),
        () => undefined, // the client notices too, and keeps the stream on UDX
      )
      .finally(done);
  }

  /** Both sides: the lane stands; it becomes the stream's carrier. */
  private adoptLane(r: SessionRecord, sock: Socket, path: DirectPath): void {
    if (r.session.destroyed || this.closed) {
      sock.destroy();
      return;
    }
    r.lane?.destroy();
    r.lane = sock;
    closeWhenSilent(sock, LANE_SILENT_MS, () =>
      this.log.info({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, `the TCP lane was silent for ${LANE_SILENT_MS} ms`),
    );
    r.session.attach(sock);
    sock.resume(); // openLane hands it over paused, and a 'data' listener does not undo that
    // After the session's own close handler: it has let go of the lane by now.
    sock.on('close', () => {
      if (r.lane !== sock) return;
      r.lane = null;
      // A lane that was carrying the stream: the client moves it back onto UDX (the agent waits
      // for that). A lane retired after a path change needs nothing.
      if (r.role === 'client' && !r.session.hasCarrier && !r.session.destroyed && !r.session.settled && !this.closed) {
        this.log.info({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, 'the TCP lane closed; the stream goes back to UDX');
        // Lanes to this endpoint die: the streams to it stay on UDX for a while.
        this.noteLaneFailure(path.endpoint);
        this.switchCarrier(r, this.options.magicsock.pathOf(r.peer));
      }
    });
    setTimeout(() => r.session.retireOldCarriers(), 3000).unref();
    this.log.debug({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16), path }, 'stream moved to a TCP lane');
    this.emit('carrier', r.peer, r.sid, path, 'tcp');
  }
}

function noLane(): Pick<SessionRecord, 'lane' | 'laneOffer' | 'laneAnswers' | 'laneAbort'> {
  return { lane: null, laneOffer: null, laneAnswers: new Map(), laneAbort: new AbortController() };
}
