// Relay lanes on the server (the protocol is in coordination/relay-lane.ts): two authenticated
// upgrade requests for the same lane id, from the two ends of a tunnel, are answered together
// and spliced. Bytes are copied as they come, each direction charged to its sender's relay budget
// (shared with its relayed datagrams), and a sender is paused, not dropped, when the budget or the
// receiver's socket is full: a lane is a byte stream, nothing on it may be lost.
//
// Bounds: a request waits at most WAIT_MS for its other end; a node has at most
// MAX_WAITING_PER_NODE requests waiting and MAX_LANES_PER_NODE lanes in all; a lane lasts only
// while both nodes stay connected with a tunnel between them (checked every SWEEP_MS).
// A lane only joins two nodes connected to this server process (not a node mirrored from
// another replica, replica/mirror.ts).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseLaneRequest, RELAY_LANE_UPGRADE } from '../coordination/relay-lane.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { Peer } from './peer.js';
import type { RelayRoutes } from './relay.js';

const WAIT_MS = 10_000;
const MAX_WAITING_PER_NODE = 16;
const MAX_LANES_PER_NODE = 256;
const SWEEP_MS = 2_000;
/** The most bytes charged at once: a budget's burst may be as small as 16 KiB. */
const CHARGE_BYTES = 16 << 10;
/** A lane on which nothing moves either way for this long is closed (peers keep theirs alive). */
const IDLE_MS = 60_000;

export interface LaneRefusal {
  readonly status: number;
  readonly text: string;
  readonly message: string;
}

interface Waiting {
  readonly from: Peer;
  readonly to: Peer;
  readonly socket: Socket;
  readonly head: Buffer;
  readonly timer: NodeJS.Timeout;
}

interface Lane {
  readonly a: Peer;
  readonly b: Peer;
  readonly sockets: readonly [Socket, Socket];
}

export class RelayLanes {
  private readonly waiting = new Map<string, Waiting>();
  private readonly lanes = new Set<Lane>();
  /** Requests waiting and lanes open, per node. */
  private readonly perNode = new Map<Peer, { waiting: number; lanes: number }>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly routes: RelayRoutes,
    private readonly refuse: (socket: Duplex, r: LaneRefusal) => void,
    private readonly metrics?: CoordinatorMetrics,
    private readonly now: () => number = Date.now,
  ) {
    this.sweep = setInterval(() => this.dropStale(), SWEEP_MS);
    this.sweep.unref();
  }

  /** Open lanes (for tests and metrics). */
  get size(): number {
    return this.lanes.size;
  }

  /**
   * An upgrade request to the lane path whose token belongs to identity `identityId`: held until
   * its other end asks, then spliced; or refused.
   */
  join(req: IncomingMessage, socket: Duplex, head: Buffer, identityId: number): void {
    const sock = socket as Socket;
    const ask = parseLaneRequest(req.headers);
    if (typeof ask === 'string') return this.refuse(sock, { status: 400, text: 'Bad Request', message: ask });
    const from = this.routes.byKey(ask.node);
    // The asking node must be connected now, with this token's identity: a token cannot speak
    // for another identity's node.
    if (!from || from.closed || from.closing || from.identityId !== identityId || from.replica !== null) {
      return this.refuse(sock, { status: 403, text: 'Forbidden', message: 'the node named in the lane request is not connected with this token' });
    }
    const to = this.routes.byKey(ask.peer);
    if (!to || to.closed || !this.routes.haveTunnel(from, to)) {
      return this.refuse(sock, { status: 403, text: 'Forbidden', message: 'no tunnel between these nodes' });
    }
    // A node of another replica (mirrored here) cannot ask this process for its end: say so at
    // once, and the stream stays on relayed datagrams, which the replicas' mesh carries.
    if (to.replica !== null) return this.refuse(sock, { status: 409, text: 'Conflict', message: 'the other node is connected to another replica' });
    const counts = this.counts(from);
    const other = this.waiting.get(ask.lane);
    if (!other) {
      if (counts.waiting >= MAX_WAITING_PER_NODE || counts.lanes >= MAX_LANES_PER_NODE) {
        return this.refuse(sock, { status: 429, text: 'Too Many Requests', message: `too many relay lanes for this node (at most ${MAX_LANES_PER_NODE}, ${MAX_WAITING_PER_NODE} waiting)` });
      }
      const timer = setTimeout(() => {
        if (this.waiting.get(ask.lane)?.socket !== sock) return;
        this.unwait(ask.lane);
        this.refuse(sock, { status: 504, text: 'Gateway Timeout', message: 'the other end did not ask for this lane in time' });
      }, WAIT_MS);
      timer.unref();
      this.waiting.set(ask.lane, { from, to, socket: sock, head, timer });
      counts.waiting++;
      sock.once('close', () => {
        if (this.waiting.get(ask.lane)?.socket === sock) this.unwait(ask.lane);
      });
      return;
    }
    // The same id the other way round, or someone guessing: only the first is a match.
    if (other.from !== to || other.to !== from) {
      return this.refuse(sock, { status: 409, text: 'Conflict', message: 'this lane id is taken' });
    }
    if (counts.lanes >= MAX_LANES_PER_NODE) {
      return this.refuse(sock, { status: 429, text: 'Too Many Requests', message: `too many relay lanes for this node (at most ${MAX_LANES_PER_NODE})` });
    }
    this.unwait(ask.lane);
    this.splice(other.from, other.socket, other.head, from, sock, head);
  }

  /** Closes every lane and waiting request (the server is shutting down). */
  close(): void {
    clearInterval(this.sweep);
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.socket.destroy();
    }
    this.waiting.clear();
    for (const l of this.lanes) for (const s of l.sockets) s.destroy();
    this.lanes.clear();
  }

  private counts(p: Peer): { waiting: number; lanes: number } {
    let c = this.perNode.get(p);
    if (!c) this.perNode.set(p, (c = { waiting: 0, lanes: 0 }));
    return c;
  }

  private release(p: Peer, what: 'waiting' | 'lanes'): void {
    const c = this.perNode.get(p);
    if (!c) return;
    c[what]--;
    if (c.waiting <= 0 && c.lanes <= 0) this.perNode.delete(p);
  }

  private unwait(lane: string): void {
    const w = this.waiting.get(lane);
    if (!w) return;
    this.waiting.delete(lane);
    clearTimeout(w.timer);
    this.release(w.from, 'waiting');
  }

  private splice(a: Peer, sa: Socket, headA: Buffer, b: Peer, sb: Socket, headB: Buffer): void {
    if (sa.destroyed || sb.destroyed) {
      sa.destroy();
      sb.destroy();
      return;
    }
    const lane: Lane = { a, b, sockets: [sa, sb] };
    this.lanes.add(lane);
    this.counts(a).lanes++;
    this.counts(b).lanes++;
    let closed = false;
    const end = (): void => {
      if (closed) return;
      closed = true;
      this.lanes.delete(lane);
      this.release(a, 'lanes');
      this.release(b, 'lanes');
    };
    const answer = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_LANE_UPGRADE}\r\n\r\n`;
    for (const s of [sa, sb]) {
      s.setNoDelay(true);
      s.setTimeout(IDLE_MS, () => s.destroy());
      s.write(answer);
      s.once('close', end);
    }
    this.pump(a, sa, sb, headA);
    this.pump(b, sb, sa, headB);
  }

  /** Copies src to dst, within the sender's relay budget, pausing src when either is full. */
  private pump(sender: Peer, src: Socket, dst: Socket, head: Buffer): void {
    let held: Buffer | null = null;
    let draining = false;
    let timer: NodeJS.Timeout | null = null;
    /** The sender has ended: the receiver is ended too once nothing is held back. */
    let ended = false;
    const resumeIfFree = (): void => {
      if (!held && !draining && !src.destroyed) src.resume();
    };
    dst.once('close', () => {
      if (timer) clearTimeout(timer);
    });
    /** Sends what the budget allows now; the rest waits for the budget to refill. */
    const forward = (chunk: Buffer): void => {
      let at = 0;
      while (at < chunk.length) {
        const piece = chunk.subarray(at, at + CHARGE_BYTES);
        if (!sender.relay.take(this.now(), piece.length)) break;
        at += piece.length;
      }
      if (at > 0) {
        this.metrics?.relayBytes.inc(at);
        if (!dst.write(at === chunk.length ? chunk : chunk.subarray(0, at)) && !draining) {
          draining = true;
          src.pause();
          dst.once('drain', () => {
            draining = false;
            resumeIfFree();
          });
        }
      }
      if (at < chunk.length) {
        held = chunk.subarray(at);
        src.pause();
        timer = setTimeout(() => {
          timer = null;
          const rest = held!;
          held = null;
          forward(rest);
          if (ended && !held) dst.end();
          else resumeIfFree();
        }, 5);
      }
    };
    // Bytes that came with the upgrade request (a peer that did not wait for the answer).
    if (head.length > 0) forward(head);
    src.on('data', (chunk: Buffer) => {
      if (held) {
        held = Buffer.concat([held, chunk]); // a read already under way when we paused
        return;
      }
      forward(chunk);
    });
    // The last chunk may still be held for the budget when the end arrives.
    src.on('end', () => {
      ended = true;
      if (!held) dst.end();
    });
    src.on('error', () => src.destroy());
    src.on('close', () => {
      // Without a clean end first, the other side must not take what it has as complete. After
      // one, what is still held for the budget goes out first.
      if (src.readableEnded) return;
      if (timer) clearTimeout(timer);
      dst.destroy();
    });
  }

  /** Lanes whose nodes left, or whose tunnel closed, end. */
  private dropStale(): void {
    for (const l of this.lanes) {
      if (l.a.closed || l.b.closed || !this.routes.haveTunnel(l.a, l.b)) for (const s of l.sockets) s.destroy();
    }
  }
}
