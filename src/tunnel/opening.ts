// Opening a stream (client -> agent), one round trip:
//   client: stream-open {sid, its UDX stream id, Noise IK message 1 carrying the request}
//   agent:  checks the client's key (proven by the handshake) is the peer the coordinator gave
//           it, checks the request, and answers stream-accept {sid, its UDX stream id, Noise
//           message 2} or stream-refuse {sid, reason}.
// Both then connect a UDX stream (the "carrier") to the other's id over the current path: the
// peer's endpoint, or the relay shim. The bytes go through a ResumableSession, which seals them
// with the handshake's keys. Request and response name the version of the stream's frames
// (request.ts): two ends that differ refuse each other with a message that says so.
import { randomBytes } from 'node:crypto';
import type { UDXStream } from 'udx-native';
import type { Duplex } from 'node:stream';
import type { Path } from '../net/path.js';
import type { NodeKey } from '../identity/node-key.js';
import type { StreamAccept, StreamOpen, StreamRefuse } from './control.js';
import { Resend } from './resend.js';
import { trace } from '../log/trace.js';
import { ResumableSession } from './session.js';
import { respond, StreamInitiator, type Handshake } from './noise.js';
import { STREAM_WIRE_VERSION, streamRequest, streamResponse, wireMismatch, wireVersionOf, type StreamRequest, type StreamResponse } from './request.js';
import type { StreamContext } from './stream-context.js';
import { acceptorRecord, openerRecord, streamKey, type OpenerRecord, type StreamRecord } from './stream-record.js';

export interface StreamLimits {
  /** Streams one peer may have open on this node. */
  readonly maxStreamsPerPeer: number;
  /** Bytes a stream keeps for resending (its write buffer bound). */
  readonly maxUnackedBytes: number;
}

export const DEFAULT_LIMITS: StreamLimits = { maxStreamsPerPeer: 256, maxUnackedBytes: 4 << 20 };

/** The agent's decision on a request: accept and take the stream, or refuse with a reason. */
/**
 * The agent's answer to a stream request. `take` receives the stream once it is open; `abandon`,
 * if given, releases what the answer holds (a connected target) when the stream never opens.
 */
export type AcceptDecision =
  | { readonly ok: true; readonly take: (stream: Duplex) => void; readonly abandon?: () => void }
  | { readonly ok: false; readonly error: string };

export class StreamOpenError extends Error {
  override readonly name = 'StreamOpenError';
  /** The agent answered no (its allow list, its target, the app serving it); false: it failed here. */
  readonly refusedByPeer: boolean;
  constructor(message: string, options: { refusedByPeer?: boolean } = {}) {
    super(message);
    this.refusedByPeer = options.refusedByPeer ?? false;
  }
}

/**
 * Liveness of an open stream. A carrier to a peer that died (killed agent, vanished client) is
 * never noticed by an idle stream: nothing is in flight, and a peer "lost" by the coordinator is
 * kept, since it may still be reachable directly. So each side sends a sealed PING after
 * KEEPALIVE_MS of silence, and a stream that hears nothing for IDLE_TIMEOUT_MS is destroyed
 * (session.ts). The timeout must outlast a path change (about 6.5 s to notice a dead direct
 * path, then the carrier switch).
 */
export const KEEPALIVE_MS = 5_000;
export const IDLE_TIMEOUT_MS = 15_000;

function newSession(handshake: Handshake, limits: StreamLimits): ResumableSession {
  return new ResumableSession({ keys: handshake, maxUnacked: limits.maxUnackedBytes, keepAliveMs: KEEPALIVE_MS, idleTimeoutMs: IDLE_TIMEOUT_MS });
}

export interface OpeningOptions {
  readonly key: NodeKey;
  readonly limits: StreamLimits;
  /** Agents only: decides on incoming requests from a peer (null: this node accepts none). */
  readonly accept: ((peerKey: string, request: StreamRequest) => Promise<AcceptDecision>) | null;
  /** Whether the peer may open streams to us at all (an agent accepts clients only). */
  readonly mayOpen: (peerKey: string) => boolean;
  /** Client: a stream opened and is running on `path` (the path when the agent's answer came). */
  readonly opened: (r: OpenerRecord, path: Path) => void;
}

/** A client's stream-open waiting for its answer. */
interface PendingOpen {
  readonly carrier: UDXStream;
  readonly initiator: StreamInitiator;
  readonly resolve: (d: Duplex) => void;
  readonly reject: (e: Error) => void;
  readonly resend: Resend;
}

export class Opening {
  /** Client: opens waiting for an answer. */
  private readonly pending = new Map<string, PendingOpen>();
  /** Agent: opens being decided (the target is being connected), to ignore their resends. */
  private readonly deciding = new Set<string>();
  /** Agent: streams that ended recently, so a late copy of their stream-open is not a new stream. */
  private readonly finished = new Set<string>();

  constructor(
    private readonly ctx: StreamContext,
    private readonly options: OpeningOptions,
  ) {}

  // ---- client side ----

  /** Opens an encrypted stream to a peer. */
  open(peerKey: string, request: StreamRequest): Promise<Duplex> {
    const { magicsock: ms, deadlineMs } = this.ctx;
    if (!ms.hasPeer(peerKey)) return Promise.reject(new StreamOpenError('no tunnel to that peer'));
    const max = this.options.limits.maxStreamsPerPeer;
    if (this.ctx.count(peerKey) >= max) return Promise.reject(new StreamOpenError(`too many open streams to this peer (${max})`));
    const sid = randomBytes(8).readBigUInt64BE(0);
    const carrier = this.ctx.newCarrier();
    const initiator = new StreamInitiator(this.options.key, Buffer.from(peerKey, 'hex'), Buffer.from(JSON.stringify({ ...request, wire: STREAM_WIRE_VERSION })));
    const key = streamKey(peerKey, sid);
    return new Promise<Duplex>((resolve, reject) => {
      const open: StreamOpen = { type: 'stream-open', sid, carrier: carrier.id, handshake: initiator.message };
      const resend = new Resend(
        () => this.ctx.send(peerKey, ms.pathOf(peerKey), open),
        this.ctx.resendMs,
        deadlineMs,
        () => this.failOpen(key, new StreamOpenError(`the agent did not answer within ${deadlineMs} ms`)),
      );
      this.pending.set(key, { carrier, initiator, resolve, reject, resend });
      trace('stream open sent');
      resend.start();
    });
  }

  /** Fails the opens waiting for an answer from this peer (every open, for null). */
  failOpens(peerKey: string | null, err: Error): void {
    for (const k of [...this.pending.keys()]) if (peerKey === null || k.startsWith(`${peerKey}/`)) this.failOpen(k, err);
  }

  async onAccept(peer: string, m: StreamAccept): Promise<void> {
    const key = streamKey(peer, m.sid);
    const p = this.pending.get(key);
    if (!p) return;
    let result;
    let response: StreamResponse;
    let agentWire: number;
    try {
      result = p.initiator.finish(m.handshake);
      const json: unknown = JSON.parse(Buffer.from(result.payload).toString('utf8'));
      response = streamResponse.parse(json);
      agentWire = wireVersionOf(json);
    } catch {
      return; // not from the agent we handshook with: keep waiting for the real answer
    }
    this.pending.delete(key);
    p.resend.stop();
    trace('stream accepted');
    if (!response.ok) {
      p.carrier.destroy();
      p.reject(new StreamOpenError(response.error, { refusedByPeer: true }));
      return;
    }
    // An agent from before the frames' version 2 accepts (it does not know the field) and would
    // then speak frames we cannot read.
    const mismatch = wireMismatch(STREAM_WIRE_VERSION, agentWire);
    if (mismatch) {
      p.carrier.destroy();
      p.reject(new StreamOpenError(mismatch, { refusedByPeer: true }));
      return;
    }
    const path = this.ctx.magicsock.pathOf(peer);
    if (!(await this.ctx.connectCarrier(p.carrier, peer, m.carrier, path))) {
      p.reject(new StreamOpenError('the tunnel closed'));
      return;
    }
    const session = newSession(result.handshake, this.options.limits);
    session.attach(p.carrier);
    const r = openerRecord(peer, m.sid, session);
    this.ctx.track(r);
    p.resolve(session);
    this.options.opened(r, path);
  }

  onRefuse(peer: string, m: StreamRefuse): void {
    const key = streamKey(peer, m.sid);
    if (this.pending.has(key)) {
      this.failOpen(key, new StreamOpenError(m.reason || 'refused', { refusedByPeer: true }));
      return;
    }
    const r = this.ctx.sessions.get(key);
    // A stream whose bytes have all been delivered both ways has nothing to lose: the agent
    // closing its side first is not an error.
    if (r && r.role === 'client' && !r.session.settled) r.session.destroy(new Error(`the agent dropped the stream: ${m.reason}`));
  }

  private failOpen(key: string, err: Error): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    p.resend.stop();
    p.carrier.destroy();
    p.reject(err);
  }

  // ---- agent side ----

  async onOpen(peer: string, m: StreamOpen, path: Path): Promise<void> {
    const key = streamKey(peer, m.sid);
    const existing = this.ctx.sessions.get(key);
    if (existing) {
      if (existing.role === 'agent') this.ctx.send(peer, path, existing.accept);
      return;
    }
    if (this.deciding.has(key) || this.finished.has(key)) return;
    const accept = this.options.accept;
    if (!accept || !this.options.mayOpen(peer)) return this.refuse(peer, path, m.sid, 'this peer may not open streams here');
    const max = this.options.limits.maxStreamsPerPeer;
    if (this.ctx.count(peer) + this.decidingFor(peer) >= max) return this.refuse(peer, path, m.sid, `too many open streams (${max})`);
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
      const json: unknown = JSON.parse(Buffer.from(start.payload).toString('utf8'));
      const mismatch = wireMismatch(wireVersionOf(json), STREAM_WIRE_VERSION);
      if (mismatch) return this.refuse(peer, path, m.sid, mismatch);
      request = streamRequest.parse(json);
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
    // Accepted, but the stream may still not open: release what the answer holds, and tell the
    // client at once rather than leave it to its deadline.
    const giveUp = (): void => {
      decision.abandon?.();
      this.refuse(peer, path, m.sid, 'the tunnel closed');
    };
    if (this.ctx.isClosed() || !this.ctx.magicsock.hasPeer(peer)) return giveUp();

    const carrier = this.ctx.newCarrier();
    if (!(await this.ctx.connectCarrier(carrier, peer, m.carrier, path))) return giveUp();
    const response: StreamResponse = { ok: true };
    const { message, handshake } = start.reply(Buffer.from(JSON.stringify({ ...response, wire: STREAM_WIRE_VERSION })));
    const session = newSession(handshake, this.options.limits);
    session.attach(carrier);
    const r = acceptorRecord(peer, m.sid, session, { type: 'stream-accept', sid: m.sid, carrier: carrier.id, handshake: message });
    this.ctx.track(r);
    this.ctx.send(peer, path, r.accept);
    this.ctx.log.debug({ peer: peer.slice(0, 8), sid: m.sid.toString(16), request }, 'stream accepted');
    decision.take(session);
  }

  /** A stream's session closed: an agent keeps its key a while, against late copies of its open. */
  ended(r: StreamRecord): void {
    if (r.role !== 'agent') return;
    this.finished.add(streamKey(r.peer, r.sid));
    // Bounded: the oldest entries go first (a Set iterates in insertion order).
    if (this.finished.size > 4096) this.finished.delete(this.finished.values().next().value as string);
  }

  /** Opens of this peer still being decided (they count against its stream limit). */
  private decidingFor(peer: string): number {
    let n = 0;
    for (const key of this.deciding) if (key.startsWith(`${peer}/`)) n++;
    return n;
  }

  private refuse(peer: string, path: Path, sid: bigint, reason: string): void {
    this.ctx.send(peer, path, { type: 'stream-refuse', sid, reason });
  }
}
