// Spare TCP lanes: a lane opened ahead, so that the next stream to a peer starts on a lane instead
// of on UDX. Opening a lane takes a round trip and a TCP handshake after the stream has opened,
// and a short transfer (an iperf3 run, an scp of a small file, ssh's own handshake) spends that
// time at UDX speed. So once a stream to a peer runs on a TCP lane, the client opens one more
// lane to the same endpoint with the usual offer (tcp-lane), whose sid names no stream: a spare.
// Both ends hold it, idle and paused. The next stream that opens on that path takes it at once:
//   client: attaches the spare to the new stream's session and sends
//           lane-claim {sid, spare}                    (resent until the agent speaks on the lane)
//   agent:  attaches its end of that spare to stream sid.
// Until the agent has the claim, what the client writes waits in the lane (the session resends
// anything a lost lane loses, from its offsets). A claim that never lands ends in the lane being
// closed, and the stream goes back to UDX as from any lane that dies.
//
// Bounds: the client keeps one spare per peer; the agent holds at most MAX_AGENT_SPARES per peer
// (answered offers beyond that are not answered), and each end closes an unclaimed spare after
// SPARE_IDLE_MS (the agent a little later than the client, so a claim never names a spare the
// agent has just closed).
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { samePath, type Path } from '../net/path.js';
import { LANE_TOKEN_BYTES, type LaneClaim, type RelayLaneAck, type TcpLane, type TcpLaneAck } from './control.js';
import { Resend } from './resend.js';
import type { StreamContext } from './stream-context.js';
import { laneEndpoint, openLane, reserveLanePort } from './tcp-lane.js';

/** Client: an unclaimed spare is closed after this long. */
const SPARE_IDLE_MS = 25_000;
/** Agent: a little longer, so the client always gives up on a spare first. */
const AGENT_SPARE_IDLE_MS = SPARE_IDLE_MS + 5_000;
/** Agent: spares held per peer; one more that opens is closed at once. */
const MAX_AGENT_SPARES = 2;
/** Agent: answers to spare offers remembered per peer. */
const ANSWERS_KEPT = 8;

interface ClientSpare {
  readonly id: bigint;
  /** The path the offer travels (direct, or the relay when no UDP path exists: lane-offers.ts). */
  readonly path: Path;
  /** The peer's IP the lane connects to, and the key its failures count under. */
  readonly address: string;
  readonly key: string;
  readonly token: Buffer;
  /** The local port the client connects from (0 until reserved). */
  port: number;
  resend: Resend | null;
  dialing: boolean;
  sock: Socket | null;
  timer: NodeJS.Timeout | null;
}

interface AgentSpare {
  readonly sock: Socket;
  readonly path: Path;
  readonly timer: NodeJS.Timeout;
}

export interface SpareLanesOptions {
  readonly enabled: boolean;
  readonly timeoutMs: number;
  /** Whether a lane to this endpoint failed a moment ago (lane-offers.ts). */
  readonly failedRecently: (endpoint: string) => boolean;
  /** Where a lane offered over a path connects to, and its failure key (lane-offers.ts); null: nowhere. */
  readonly aim: (peer: string, path: Path) => { address: string; key: string } | null;
}

export class SpareLanes {
  /** Client: the spare of each peer, ready or opening. */
  private readonly mine = new Map<string, ClientSpare>();
  /** Agent: spares held, per peer, by id. */
  private readonly theirs = new Map<string, Map<bigint, AgentSpare>>();
  /** Agent: offers of spares answered, per peer (by the client's token). */
  private readonly answers = new Map<string, Map<string, TcpLaneAck | RelayLaneAck | null>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly ctx: StreamContext,
    private readonly options: SpareLanesOptions,
  ) {}

  /** Aborts spare lanes still opening (the manager closed). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  // ---- client side ----

  /** Opens a spare lane to the peer over `path`, unless one is there or opening. */
  replenish(peer: string, path: Path): void {
    const aim = this.options.aim(peer, path);
    if (!this.options.enabled || this.ctx.isClosed() || !aim || this.options.failedRecently(aim.key)) return;
    const have = this.mine.get(peer);
    if (have && samePath(have.path, path)) return;
    if (have) this.drop(peer, have);
    const spare: ClientSpare = { id: randomBytes(8).readBigUInt64BE(0), path, address: aim.address, key: aim.key, token: randomBytes(LANE_TOKEN_BYTES), port: 0, resend: null, dialing: false, sock: null, timer: null };
    this.mine.set(peer, spare);
    reserveLanePort().then(
      (port) => {
        if (this.mine.get(peer) !== spare) return;
        spare.port = port;
        const msg: TcpLane = { type: 'tcp-lane', sid: spare.id, port, token: spare.token };
        spare.resend = new Resend(() => this.ctx.send(peer, path, msg), this.ctx.resendMs, this.options.timeoutMs, () => this.drop(peer, spare));
        spare.resend.start();
      },
      () => this.drop(peer, spare),
    );
  }

  /** The agent's answer to a spare offer; false: it is not about a spare of ours. */
  onAck(peer: string, m: TcpLaneAck): boolean {
    const spare = this.mine.get(peer);
    if (!spare || spare.id !== m.sid) return false;
    if (spare.dialing) return true;
    const port = spare.port;
    if (!port) return true;
    spare.dialing = true;
    spare.resend?.stop();
    const attempt = {
      localPort: port,
      remoteAddress: spare.address,
      remotePort: m.port,
      remoteListenPort: m.listenPort,
      ownToken: spare.token,
      peerToken: m.token,
      role: 'client' as const,
      timeoutMs: this.options.timeoutMs,
    };
    openLane(attempt, this.abort.signal).then(
      (sock) => {
        if (this.mine.get(peer) !== spare) return void sock.destroy();
        spare.sock = sock;
        sock.on('error', () => sock.destroy());
        sock.once('close', () => this.drop(peer, spare));
        spare.timer = setTimeout(() => this.drop(peer, spare), SPARE_IDLE_MS);
        spare.timer.unref();
      },
      () => this.drop(peer, spare),
    );
    return true;
  }

  /**
   * Takes the peer's spare for a stream that opened on `path`, if one stands there; the caller
   * attaches it and sends the claim (sendClaim). Paused, as openLane hands lanes over.
   */
  take(peer: string, path: Path): { sock: Socket; id: bigint } | null {
    const spare = this.mine.get(peer);
    if (!spare?.sock || spare.sock.destroyed || !samePath(spare.path, path)) return null;
    // A lane to this endpoint just died: the spare may be as dead, and the stream stays on UDX.
    if (this.options.failedRecently(spare.key)) return null;
    this.mine.delete(peer);
    if (spare.timer) clearTimeout(spare.timer);
    spare.sock.removeAllListeners('close');
    spare.sock.removeAllListeners('error');
    return { sock: spare.sock, id: spare.id };
  }

  /** Client: tells the agent which spare carries stream `sid`, until it speaks on the lane. */
  sendClaim(peer: string, sid: bigint, spare: { sock: Socket; id: bigint }, path: Path): void {
    const msg: LaneClaim = { type: 'lane-claim', sid, spare: spare.id };
    const heard = spare.sock.bytesRead;
    const resend = new Resend(
      () => {
        // The agent's session says hello on the lane once it has attached it.
        if (spare.sock.bytesRead > heard || spare.sock.destroyed) return void resend.stop();
        this.ctx.send(peer, path, msg);
      },
      this.ctx.resendMs,
      this.ctx.deadlineMs,
      // Never claimed: the lane goes, and with it the stream goes back to UDX (lane-offers.ts).
      () => {
        if (spare.sock.bytesRead === heard) spare.sock.destroy();
      },
    );
    resend.start();
  }

  private drop(peer: string, spare: ClientSpare): void {
    if (this.mine.get(peer) === spare) this.mine.delete(peer);
    spare.resend?.stop();
    if (spare.timer) clearTimeout(spare.timer);
    spare.sock?.destroy();
  }

  /** The remote end of the peer's ready spare lane ("ip:port"), if one stands. */
  readyTo(peer: string): string | null {
    const sock = this.mine.get(peer)?.sock;
    return sock && !sock.destroyed ? laneEndpoint(sock) : null;
  }

  /** Whether a spare to the peer is opening now (offered, not yet open or given up). */
  opening(peer: string): boolean {
    const s = this.mine.get(peer);
    return s !== undefined && s.sock === null;
  }

  // ---- agent side ----

  /**
   * The answers to this peer's spare offers, so a resent offer gets the same answer: the last
   * few only (a spare is claimed or closed long before its offer could be resent).
   */
  answersFor(peer: string): Map<string, TcpLaneAck | RelayLaneAck | null> {
    let a = this.answers.get(peer);
    if (!a) this.answers.set(peer, (a = new Map()));
    while (a.size > ANSWERS_KEPT) a.delete(a.keys().next().value as string);
    return a;
  }

  /** Agent: a spare lane opened; held, paused, until claimed or idle too long. */
  keep(peer: string, id: bigint, sock: Socket, path: Path): void {
    let held = this.theirs.get(peer);
    if (!held) this.theirs.set(peer, (held = new Map()));
    if (held.size >= MAX_AGENT_SPARES || this.ctx.isClosed()) return void sock.destroy();
    const forget = (): void => {
      if (held.get(id)?.sock !== sock) return;
      held.delete(id);
      if (held.size === 0 && this.theirs.get(peer) === held) this.theirs.delete(peer);
    };
    const timer = setTimeout(() => sock.destroy(), AGENT_SPARE_IDLE_MS);
    timer.unref();
    held.set(id, { sock, path, timer });
    sock.on('error', () => sock.destroy());
    sock.once('close', () => {
      clearTimeout(timer);
      forget();
    });
  }

  /** Agent: the spare `id` of this peer, for a stream it claimed; null if there is none. */
  claim(peer: string, id: bigint): { sock: Socket; path: Path } | null {
    const held = this.theirs.get(peer);
    const spare = held?.get(id);
    if (!held || !spare) return null;
    held.delete(id);
    if (held.size === 0) this.theirs.delete(peer);
    clearTimeout(spare.timer);
    spare.sock.removeAllListeners('close');
    spare.sock.removeAllListeners('error');
    return { sock: spare.sock, path: spare.path };
  }

  // ---- both ----

  /** The peer is gone: its spares go too. */
  peerGone(peer: string): void {
    const mine = this.mine.get(peer);
    if (mine) this.drop(peer, mine);
    for (const s of this.theirs.get(peer)?.values() ?? []) s.sock.destroy();
    this.theirs.delete(peer);
    this.answers.delete(peer);
  }

  close(): void {
    this.abort.abort();
    for (const [peer, s] of this.mine) this.drop(peer, s);
    for (const held of this.theirs.values()) for (const s of held.values()) s.sock.destroy();
    this.theirs.clear();
    this.answers.clear();
  }
}
