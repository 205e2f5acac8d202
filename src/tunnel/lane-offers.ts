// TCP lanes, offered and accepted. Once a stream runs on a direct path, the client also tries a
// TCP lane (tcp-lane.ts: how one opens): a direct TCP connection that carries the session instead
// of UDX, for throughput.
//   client: tcp-lane {sid, the port it connects from, its token}   (resent until answered)
//   agent:  tcp-lane-ack {sid, its port, the port it listens on, its token}
// Then both connect (tcp-lane.ts). If the lane cannot open, the stream stays on UDX, and streams
// to that endpoint do not try again for a while; if it dies, the client moves the stream back to
// a UDX carrier.
//
// When no UDP path exists (the stream runs on the relay, e.g. a network that blocks UDP but lets
// TCP out), the same offer travels over the relay, and each side aims only at the IP the
// coordinator saw the other's connection come from (its vouched IP, probe-aim.ts): never at an
// address a peer named. If that lane opens, the stream's bytes go direct over TCP; if not, the
// stream stays on the relay lane offered beside it (relay-lanes.ts), or on relayed UDX.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { splitEndpoint } from '../net/endpoint.js';
import { normalizeIp } from '../magicsock/probe-aim.js';
import { samePath, type Path } from '../net/path.js';
import { LANE_TOKEN_BYTES, type LaneClaim, type RelayLaneAck, type TcpLane, type TcpLaneAck } from './control.js';
import { SpareLanes } from './spare-lanes.js';
import { Resend } from './resend.js';
import { RETIRE_AFTER_MS, retireOldCarriersSoon } from './carrier-moves.js';
import type { StreamContext } from './stream-context.js';
import { streamKey, type LaneKind, type LaneOffer, type OpenerRecord, type StreamRecord } from './stream-record.js';
import { closeWhenSilent, LaneListener, laneEndpoint, openLane, reserveLanePort } from './tcp-lane.js';

/** Lane attempts a stream may make (agent: answer); a bound on what one peer can make us do. */
const MAX_LANE_ATTEMPTS = 16;
/** Agent: spare offers answered (spare-lanes.ts keeps the last 8 answers and 2 spares per peer). */
const MAX_SPARES_ANSWERED = 16;
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
/**
 * Client: lane offers in flight per peer; more streams wait their turn on UDX. Below the agent's
 * MAX_LANES_OPENING_PER_PEER (with room for a spare), whose offers beyond it go unanswered: the
 * client would time out on them and take the endpoint for one where lanes fail, keeping every
 * stream to it on UDX for LANE_RETRY_AFTER_MS (as 100 streams opened at once did).
 */
const MAX_OFFERS_IN_FLIGHT = MAX_LANES_OPENING_PER_PEER / 2;
/** The key under which failed relay lanes are remembered, beside the endpoints of TCP lanes. */
export const RELAY_LANES = 'relay';

export interface LaneOffersOptions {
  /** Whether to offer (client) and accept (agent) TCP lanes on direct paths. */
  readonly enabled: boolean;
  /** How long a TCP lane may take to open, from the offer (ms). */
  readonly timeoutMs: number;
  /** Client: the lane that carried the stream died; move it back onto UDX. */
  readonly backToUdx: (r: OpenerRecord) => void;
  /** Client: a lane offered over the relay did not open (the stream may try a relay lane). */
  readonly noRelayedLane: (r: OpenerRecord, path: Path) => void;
}

/** The key under which a failed lane to a vouched IP (offered over the relay) is remembered. */
export function vouchedLaneKey(ip: string): string {
  return `vouched ${ip}`;
}

/** A lane's direct path, as status and events report it: its remote end, over TCP. */
function lanePath(sock: Socket, fallback: Path): Path {
  const endpoint = laneEndpoint(sock);
  return endpoint ? { kind: 'direct', endpoint, transport: 'tcp' } : fallback;
}

export class LaneOffers {
  /** Client: endpoints where a lane failed, and until when not to try again. */
  private readonly failed = new Map<string, number>();
  /** Agent: lane attempts in progress, per peer. */
  private readonly opening = new Map<string, number>();
  /** Client: offers in flight per peer, and the streams waiting for a turn (MAX_OFFERS_IN_FLIGHT). */
  private readonly inFlight = new Map<string, Set<LaneOffer>>();
  /** Per peer, in the order they came: each waiting stream and the path it is on now. */
  private readonly waiting = new Map<string, Map<OpenerRecord, Path>>();

  /** Lanes opened ahead of the streams that will use them. */
  readonly spares: SpareLanes;

  constructor(
    private readonly ctx: StreamContext,
    private readonly options: LaneOffersOptions,
  ) {
    this.spares = new SpareLanes(ctx, {
      enabled: options.enabled,
      timeoutMs: options.timeoutMs,
      failedRecently: (e) => this.failedRecently(e),
      aim: (peer, path) => this.aim(peer, path),
    });
  }

  // ---- client side ----

  /** Where a lane offered over `path` would connect to, and under which key its failure counts; null: nowhere. */
  aim(peer: string, path: Path): { address: string; key: string } | null {
    if (path.kind === 'direct') {
      const ep = splitEndpoint(path.endpoint);
      return ep ? { address: ep.address, key: path.endpoint } : null;
    }
    // The relay: only if direct paths are allowed here, and only at the IP the coordinator vouched for.
    const ip = this.ctx.magicsock.isDirectAllowed ? this.ctx.magicsock.vouchedIpOf(peer) : null;
    return ip ? { address: ip, key: vouchedLaneKey(ip) } : null;
  }

  /**
   * Offers the agent a TCP lane for this stream, if none is open: on a direct path, to its
   * endpoint's IP; on the relay, to the peer's vouched IP. False if no offer was made.
   */
  offer(r: OpenerRecord, path: Path): boolean {
    if (!this.options.enabled || this.ctx.isClosed() || r.lane || r.laneOffer || r.session.destroyed || r.session.settled) return false;
    const aim = this.aim(r.peer, path);
    if (!aim || this.failedRecently(aim.key)) return false;
    let flying = this.inFlight.get(r.peer);
    if (flying && flying.size >= MAX_OFFERS_IN_FLIGHT) {
      let queue = this.waiting.get(r.peer);
      if (!queue) this.waiting.set(r.peer, (queue = new Map()));
      // A stream that moved while it waited keeps its turn, for its new path.
      queue.set(r, path);
      return true;
    }
    const offer: LaneOffer = { token: randomBytes(LANE_TOKEN_BYTES), path, address: aim.address, port: 0, resend: null, dialing: false };
    r.laneOffer = offer;
    if (!flying) this.inFlight.set(r.peer, (flying = new Set()));
    flying.add(offer);
    reserveLanePort().then(
      (port) => {
        if (r.laneOffer !== offer) return;
        offer.port = port;
        const msg: TcpLane = { type: 'tcp-lane', sid: r.sid, port, token: offer.token };
        offer.resend = new Resend(() => this.ctx.send(r.peer, path, msg), this.ctx.resendMs, this.options.timeoutMs, () =>
          this.didNotOpen(r, offer, 'the agent did not answer'),
        );
        offer.resend.start();
      },
      (err: Error) => this.didNotOpen(r, offer, err.message),
    );
    return true;
  }

  /** Abandons the offer in progress, if any (the stream ended). */
  cancel(r: OpenerRecord): void {
    const offer = r.laneOffer;
    offer?.resend?.stop();
    r.laneOffer = null;
    const queue = this.waiting.get(r.peer);
    if (queue?.delete(r) && queue.size === 0) this.waiting.delete(r.peer);
    if (offer) this.release(r.peer, offer);
  }

  /** An offer is over (a lane, a failure, the stream's end): the next waiting stream may offer. */
  private release(peer: string, offer: LaneOffer): void {
    const flying = this.inFlight.get(peer);
    if (!flying?.delete(offer)) return;
    if (flying.size === 0) this.inFlight.delete(peer);
    const queue = this.waiting.get(peer);
    if (!queue) return;
    for (const [r, path] of queue) {
      queue.delete(r);
      if (queue.size === 0) this.waiting.delete(peer);
      // Its path is the one it waits for a lane on (offer() updates it when the stream moves);
      // a path that changed again since, without a new offer, has no lane to wait for.
      if (!samePath(this.ctx.magicsock.pathOf(peer), path)) continue;
      if (this.offer(r, path)) return;
    }
  }

  onAck(peer: string, m: TcpLaneAck): void {
    if (this.spares.onAck(peer, m)) return;
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!r || r.role !== 'client') return;
    const offer = r.laneOffer;
    if (!offer || offer.dialing) return;
    offer.dialing = true;
    offer.resend?.stop();
    const attempt = {
      localPort: offer.port,
      remoteAddress: offer.address,
      remotePort: m.port,
      remoteListenPort: m.listenPort,
      ownToken: offer.token,
      peerToken: m.token,
      role: 'client' as const,
      timeoutMs: this.options.timeoutMs,
    };
    openLane(attempt, r.laneAbort.signal).then(
      (sock) => {
        if (r.laneOffer === offer) r.laneOffer = null;
        this.release(r.peer, offer);
        this.adopt(r, sock, offer.path, 'tcp');
      },
      (err: Error) => this.didNotOpen(r, offer, err.message),
    );
  }

  private didNotOpen(r: OpenerRecord, offer: LaneOffer, why: string): void {
    if (r.laneOffer !== offer) return void this.release(r.peer, offer);
    offer.resend?.stop();
    r.laneOffer = null;
    const relayed = offer.path.kind === 'relay';
    this.noteFailure(offer.path.kind === 'direct' ? offer.path.endpoint : vouchedLaneKey(offer.address));
    this.ctx.log.info({ peer: r.peer.slice(0, 8), address: offer.address, relayed, why }, 'no TCP lane; the stream stays on UDX');
    if (relayed) this.options.noRelayedLane(r, offer.path);
    // After noting the failure: the streams waiting for a turn see it and stay where they are.
    this.release(r.peer, offer);
  }

  /** Whether a lane to `endpoint` ("relay": through the server) failed within LANE_RETRY_AFTER_MS. */
  failedRecently(endpoint: string): boolean {
    const until = this.failed.get(endpoint);
    return until !== undefined && until > Date.now();
  }

  noteFailure(endpoint: string): void {
    this.failed.delete(endpoint);
    this.failed.set(endpoint, Date.now() + LANE_RETRY_AFTER_MS);
    // Bounded: the oldest entries go first.
    if (this.failed.size > 1024) this.failed.delete(this.failed.keys().next().value as string);
  }

  // ---- agent side ----

  /**
   * Answers a lane offer with our port, listener and token, and starts connecting. An offer for
   * no stream of ours is for a spare lane (spare-lanes.ts).
   */
  async onOffer(peer: string, m: TcpLane, path: Path): Promise<void> {
    // Over a direct path we connect to its endpoint, where the client proved to be; over the relay
    // to the client's vouched IP, and never anywhere else.
    if (!this.options.enabled) return;
    const aim = this.aim(peer, path);
    if (!aim) return;
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!r) {
      const sock = await this.answer(peer, m, path, aim.address, this.spares.answersFor(peer), MAX_SPARES_ANSWERED, this.spares.signal);
      if (sock) this.spares.keep(peer, m.sid, sock, path);
      return;
    }
    if (r.role !== 'agent' || r.session.destroyed) return;
    const sock = await this.answer(peer, m, path, aim.address, r.laneAnswers, MAX_LANE_ATTEMPTS, r.laneAbort.signal);
    if (sock) this.adopt(r, sock, path, 'tcp');
  }

  /** Agent: the client puts a stream on a spare lane it opened ahead. */
  onClaim(peer: string, m: LaneClaim): void {
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!r || r.role !== 'agent' || r.session.destroyed) return;
    const spare = this.spares.claim(peer, m.spare);
    if (spare) this.adopt(r, spare.sock, spare.path, 'tcp');
  }

  /**
   * The agent's side of one offer: answered once (the same answer again for resends, within
   * `maxAnswers`), at most MAX_LANES_OPENING_PER_PEER at once per peer; the lane, or null.
   */
  private async answer(
    peer: string,
    m: TcpLane,
    path: Path,
    address: string,
    answers: Map<string, TcpLaneAck | RelayLaneAck | null>,
    maxAnswers: number,
    signal: AbortSignal,
  ): Promise<Socket | null> {
    const id = Buffer.from(m.token).toString('hex');
    const answered = answers.get(id);
    if (answered !== undefined) {
      if (answered) this.ctx.send(peer, path, answered);
      return null;
    }
    const opening = this.opening.get(peer) ?? 0;
    if (answers.size >= maxAnswers || opening >= MAX_LANES_OPENING_PER_PEER) return null;
    answers.set(id, null);
    this.opening.set(peer, opening + 1);
    try {
      const [p, l] = await Promise.allSettled([reserveLanePort(), LaneListener.open()]);
      if (p.status === 'rejected' || l.status === 'rejected' || signal.aborted || this.ctx.isClosed()) {
        if (l.status === 'fulfilled') l.value.close();
        return null;
      }
      const listener = l.value;
      const ownToken = randomBytes(LANE_TOKEN_BYTES);
      const ack: TcpLaneAck = { type: 'tcp-lane-ack', sid: m.sid, port: p.value, listenPort: listener.port, token: ownToken };
      answers.set(id, ack);
      this.ctx.send(peer, path, ack);
      const attempt = {
        localPort: p.value,
        remoteAddress: address,
        remotePort: m.port,
        listener,
        ownToken,
        peerToken: m.token,
        role: 'agent' as const,
        timeoutMs: this.options.timeoutMs,
      };
      // A lane that does not open: the client notices too, and keeps the stream on UDX.
      return await openLane(attempt, signal).catch(() => null);
    } finally {
      const n = (this.opening.get(peer) ?? 1) - 1;
      if (n > 0) this.opening.set(peer, n);
      else this.opening.delete(peer);
    }
  }

  // ---- both sides ----

  /**
   * The lane (a TCP lane offered over `path`, or a relay lane over a relayed `path`) stands; it
   * becomes the stream's carrier.
   */
  adopt(r: StreamRecord, sock: Socket, path: Path, kind: LaneKind): void {
    if (r.session.destroyed || this.ctx.isClosed()) {
      sock.destroy();
      return;
    }
    // A relay lane that proves after a TCP lane already carries the stream is not needed: a
    // direct TCP lane wins whichever proved first, and both ends apply the same rule. Not closed
    // at once: the other end may have taken it in the moment before its own TCP lane proved, and
    // its frames on it are resent on the TCP lane (the session keeps them until acknowledged).
    if (kind === 'relay-lane' && r.lane && r.laneKind === 'tcp' && r.session.isCurrent(r.lane)) {
      sock.on('error', () => sock.destroy());
      const unused = setTimeout(() => sock.destroy(), RETIRE_AFTER_MS);
      unused.unref(); // its only hold on the socket: none on the stream, which may live long
      this.ctx.log.debug({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, 'a relay lane proved after the TCP lane; not used');
      return;
    }
    const what = kind === 'tcp' ? 'TCP lane' : 'relay lane';
    // Read now: a closed socket no longer knows its remote address.
    const failKey = path.kind === 'direct' ? path.endpoint : kind === 'tcp' ? vouchedLaneKey(normalizeIp(sock.remoteAddress) ?? '') : RELAY_LANES;
    const reported = kind === 'tcp' ? lanePath(sock, path) : path;
    // The lane this one replaces (a relay lane a TCP lane beat) is retired with the old carriers
    // (retireOldCarriersSoon below), not now: the other end may not have moved off it yet.
    r.lane = sock;
    r.laneKind = kind;
    closeWhenSilent(sock, LANE_SILENT_MS, () =>
      this.ctx.log.info({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, `the ${what} was silent for ${LANE_SILENT_MS} ms`),
    );
    r.session.attach(sock);
    sock.resume(); // openLane hands it over paused, and a 'data' listener does not undo that
    // After the session's own close handler: it has let go of the lane by now.
    sock.on('close', () => {
      if (r.lane !== sock) return;
      r.lane = null;
      r.laneKind = null;
      // A lane that was carrying the stream: the client moves it back onto UDX (the agent waits
      // for that). A lane retired after a path change needs nothing.
      if (r.role === 'client' && !r.session.hasCarrier && !r.session.destroyed && !r.session.settled && !this.ctx.isClosed()) {
        this.ctx.log.info({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16) }, `the ${what} closed; the stream goes back to UDX`);
        // Lanes to this endpoint die: the streams to it stay on UDX for a while.
        this.noteFailure(failKey);
        this.options.backToUdx(r);
      }
    });
    retireOldCarriersSoon(r);
    // A lane opened to this endpoint: the next stream to it need not start on UDX.
    if (r.role === 'client' && kind === 'tcp') this.spares.replenish(r.peer, path);
    this.ctx.log.debug({ peer: r.peer.slice(0, 8), sid: r.sid.toString(16), path }, `stream moved to a ${what}`);
    // A TCP lane is direct whichever path its offer travelled: reported as its remote end.
    this.ctx.moved(r.peer, r.sid, reported, kind);
  }
}
