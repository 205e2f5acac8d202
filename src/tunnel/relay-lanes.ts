// Relay lanes, offered and accepted. A stream on the relay path starts on a UDX carrier whose
// datagrams cross the server one WebSocket frame each; the client then also offers a relay lane:
// a TCP connection of each peer to the server, spliced there (coordination/relay-lane.ts), that
// carries the session instead, as a TCP lane does on a direct path.
//   client: relay-lane {sid, lane id, its token}      (resent until answered)
//   agent:  relay-lane-ack {sid, lane id, its token}
// Then both ask the server for the lane (the node layer's dialer), and on the joined connection
// prove themselves as on a TCP lane (proveLane): the client sends the agent's token, the agent
// answers with the client's. The lane id and the tokens travel sealed end to end, so neither the
// server nor anyone else can join or answer in a peer's place; the bytes are sealed
// frames (record-cipher.ts). A lane that cannot open leaves the stream on UDX; one that dies moves it back to UDX
// (lane-offers.ts adopts and watches both kinds of lane). Offered at the same time as a TCP lane
// to the peer's vouched IP, if one is (streams.ts): a TCP lane wins when both prove.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { RELAY, type Path } from '../net/path.js';
import { LANE_TOKEN_BYTES, type RelayLane, type RelayLaneAck } from './control.js';
import { RELAY_LANES, type LaneOffers } from './lane-offers.js';
import { Resend } from './resend.js';
import type { StreamContext } from './stream-context.js';
import { streamKey, type OpenerRecord, type RelayLaneOffer, type StreamRecord } from './stream-record.js';
import { LaneError, proveLane } from './tcp-lane.js';
import { trace } from '../log/trace.js';

/** Asks the coordination server to join us to lane `lane` with `peerKey`; the joined socket, paused. */
export type RelayLaneDialer = (peerKey: string, lane: Uint8Array, signal: AbortSignal) => Promise<Socket>;

/** Relay lanes a stream may ask for (agent: answer); a bound on what one peer can make us do. */
const MAX_RELAY_LANE_ATTEMPTS = 16;
/** Agent: relay lanes being opened per peer at once. */
const MAX_OPENING_PER_PEER = 16;

export interface RelayLanesOptions {
  /** How to reach the server for a lane; null: no relay lanes (offered or accepted). */
  readonly dial: RelayLaneDialer | null;
  /** How long a relay lane may take to open, from the offer (ms). */
  readonly timeoutMs: number;
  /** Client: the stream went direct while its relay lane opened: move it to the direct path. */
  readonly toDirect: (r: OpenerRecord) => void;
}

export class RelayLanes {
  /** Agent: relay lanes being opened, per peer. */
  private readonly opening = new Map<string, number>();

  constructor(
    private readonly ctx: StreamContext,
    private readonly lanes: LaneOffers,
    private readonly options: RelayLanesOptions,
  ) {}

  // ---- client side ----

  /** Offers the agent a relay lane for this stream, if it runs on the relay and none is open. */
  offer(r: OpenerRecord, path: Path): void {
    if (!this.options.dial || this.ctx.isClosed() || path.kind !== 'relay' || r.relayOffer || r.session.destroyed || r.session.settled) return;
    if ((r.lane && r.session.isCurrent(r.lane)) || this.lanes.failedRecently(RELAY_LANES)) return;
    const lane = randomBytes(LANE_TOKEN_BYTES);
    const token = randomBytes(LANE_TOKEN_BYTES);
    const msg: RelayLane = { type: 'relay-lane', sid: r.sid, lane, token };
    const offer: RelayLaneOffer = {
      lane,
      token,
      dialing: false,
      resend: new Resend(() => this.ctx.send(r.peer, path, msg), this.ctx.resendMs, this.options.timeoutMs, () =>
        this.didNotOpen(r, offer, 'the agent did not answer'),
      ),
    };
    r.relayOffer = offer;
    trace('relay lane offered');
    offer.resend.start();
  }

  /** Abandons the offer in progress, if any (the stream ended, or its path changed). */
  cancel(r: OpenerRecord): void {
    r.relayOffer?.resend.stop();
    r.relayOffer = null;
  }

  onAck(peer: string, m: RelayLaneAck): void {
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!r || r.role !== 'client') return;
    const offer = r.relayOffer;
    if (!offer || offer.dialing || !offer.lane.equals(m.lane)) return;
    offer.dialing = true;
    offer.resend.stop();
    trace('relay lane answered');
    this.connect(r, m.lane, offer.token, m.token).then(
      (sock) => {
        if (r.relayOffer === offer) r.relayOffer = null;
        this.adopt(r, sock);
        // The path went direct while the lane opened: the agent has taken the lane too, so take
        // it (the two ends must agree), then move on to the direct path.
        if (r.lane === sock && this.ctx.magicsock.pathOf(r.peer).kind === 'direct') this.options.toDirect(r);
      },
      (err: Error) => this.didNotOpen(r, offer, err.message),
    );
  }

  private didNotOpen(r: OpenerRecord, offer: RelayLaneOffer, why: string): void {
    if (r.relayOffer !== offer) return;
    offer.resend.stop();
    r.relayOffer = null;
    this.lanes.noteFailure(RELAY_LANES);
    this.ctx.log.info({ peer: r.peer.slice(0, 8), why }, 'no relay lane; the stream stays on relayed UDX');
  }

  // ---- agent side ----

  /** Answers a relay lane offer with our token, and asks the server for the lane. */
  onOffer(peer: string, m: RelayLane, path: Path): void {
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!this.options.dial || !r || r.role !== 'agent' || r.session.destroyed || this.ctx.isClosed()) return;
    const id = `relay:${Buffer.from(m.lane).toString('hex')}`;
    const answered = r.laneAnswers.get(id);
    if (answered !== undefined) {
      if (answered) this.ctx.send(peer, path, answered);
      return;
    }
    const opening = this.opening.get(peer) ?? 0;
    if (r.laneAnswers.size >= MAX_RELAY_LANE_ATTEMPTS || opening >= MAX_OPENING_PER_PEER) return;
    this.opening.set(peer, opening + 1);
    const token = randomBytes(LANE_TOKEN_BYTES);
    const ack: RelayLaneAck = { type: 'relay-lane-ack', sid: m.sid, lane: m.lane, token };
    r.laneAnswers.set(id, ack);
    this.ctx.send(peer, path, ack);
    this.connect(r, m.lane, token, m.token)
      .then(
        (sock) => this.adopt(r, sock),
        () => undefined, // the client notices too, and keeps the stream on relayed UDX
      )
      .finally(() => {
        const n = (this.opening.get(peer) ?? 1) - 1;
        if (n > 0) this.opening.set(peer, n);
        else this.opening.delete(peer);
      });
  }

  // ---- both sides ----

  /** Joins the lane at the server and runs the proof on it, within the lane timeout. */
  private async connect(r: StreamRecord, lane: Uint8Array, ownToken: Uint8Array, peerToken: Uint8Array): Promise<Socket> {
    const started = Date.now();
    const sock = await this.options.dial!(r.peer, lane, r.laneAbort.signal);
    trace('relay lane joined at the server');
    const left = Math.max(1, this.options.timeoutMs - (Date.now() - started));
    return new Promise<Socket>((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        sock.destroy();
        reject(new LaneError(why));
      };
      const timer = setTimeout(() => fail(`the peer did not prove itself on the relay lane within ${this.options.timeoutMs} ms`), left);
      const onClose = (): void => fail('the relay lane closed before the peer proved itself');
      sock.once('close', onClose);
      sock.on('error', () => sock.destroy());
      proveLane(sock, { role: r.role, ownToken, peerToken }).then(
        () => {
          trace('relay lane proved');
          clearTimeout(timer);
          sock.off('close', onClose);
          sock.removeAllListeners('error');
          resolve(sock);
        },
        (err: Error) => fail(err.message),
      );
    });
  }

  private adopt(r: StreamRecord, sock: Socket): void {
    this.lanes.adopt(r, sock, RELAY, 'relay-lane');
  }
}
