// Port prediction for a hard NAT facing an easy one ("birthday" punching, as Holepunch's hyperdht
// does it). The hard side opens many sockets, each sending to the easy side's public endpoint:
// each opens a mapping on the hard NAT, at a port nobody can predict, that lets the easy side in.
// The easy side then sends to random ports of the hard side's public IP. With 256 mappings among
// ~64,500 ports, 2,000 probes find one with a probability of 1 - (1 - 256/64512)^2000 > 99.9%.
// The first probe that lands is answered from the socket it reached, and that socket becomes the
// hard side's path. Bounded: 256 sockets for 20 s, 2,000 probes over 2 s, once a minute per peer
// key here and, through the owner's mayStart (probe-budget.ts), once a minute per identity; the
// owner also sends only to the IP the coordinator saw the peer at (probe-aim.ts).
//
// Here are both halves: when to try it (planPortPrediction, pure, from the two netcheck
// summaries), and the mechanism (PortPredictor, which MagicSock owns: it seals and sends through
// the hooks MagicSock gives it, and hands back what arrives on its sockets).
import { randomBytes } from 'node:crypto';
import type UDX from 'udx-native';
import type { UDXSocket } from 'udx-native';
import type { DiscoMessage } from '../disco/index.js';
import type { Logger } from '../log/logger.js';
import { formatEndpoint, splitEndpoint } from '../net/endpoint.js';
import { isPrivateAddress } from '../net/ip.js';
import type { Path } from '../net/path.js';
import { isHardMapping } from '../netcheck/classify.js';
import type { NatBehaviour } from '../netcheck/report.js';

/** Sockets the hard side opens. */
export const BIRTHDAY_SOCKETS = 256;
/** When the hard side's sockets send towards the easy side (ms after the start). */
export const BIRTHDAY_SEND_AT_MS = [0, 500, 1000, 2000, 4000] as const;
/** How long the hard side keeps sockets that did not win. */
export const BIRTHDAY_LIFETIME_MS = 20_000;
/** Probes the easy side sends, and how they are spread. */
export const BIRTHDAY_PROBES = 2000;
export const BIRTHDAY_BATCH = 100;
export const BIRTHDAY_BATCH_INTERVAL_MS = 100;
/** At most one attempt per peer this often, on either side. */
export const BIRTHDAY_MIN_INTERVAL_MS = 60_000;
/** Ordinary hole punching gets this long to find a direct path before port prediction starts. */
export const PORT_PREDICTION_DELAY_MS = 1000;
/** The hard side aims its sockets at no more than this many of the peer's public endpoints. */
const MAX_TARGETS = 2;
/** When the hard side asks the peer, through the relay, to probe (ms after the start). */
const ASK_AT_MS = [0, 1000] as const;

/** `count` distinct random ports from 1024 to 65535 (the range NATs allocate from). */
export function randomPorts(count: number, random: () => number = Math.random): number[] {
  const seen = new Set<number>();
  const n = Math.min(count, 65535 - 1024 + 1);
  while (seen.size < n) seen.add(1024 + Math.floor(random() * (65535 - 1024 + 1)));
  return [...seen];
}

// ---- when --------------------------------------------------------------------------------------

/** What one side published about its NAT (a netcheck summary); any field may be unknown. */
export interface NatSummary {
  readonly mapping?: NatBehaviour | undefined;
  readonly filtering?: NatBehaviour | undefined;
  /** The side's public IPv4 endpoint as a STUN server saw it. */
  readonly globalV4?: string | null | undefined;
}

export interface PortPredictionPlan {
  /** Our public IP: the peer probes random ports of it. */
  readonly publicIp: string;
  /** The peer's public endpoints: our sockets send to them. */
  readonly targets: readonly string[];
}

/**
 * Whether this node should start port prediction towards a peer, and with what. Only when our
 * NAT is hard and the peer's maps endpoint-independently but filters: then ordinary hole punching
 * cannot work (the peer's filter never sees the port our NAT will use), yet the peer's one public
 * endpoint is a target our sockets can all aim at. Both NATs hard is left to the relay; so is a
 * peer that does not filter (it reaches whatever port our NAT opens by ordinary punching). Null
 * also when we know no public IP of ours, or the peer published no public endpoint.
 */
export function planPortPrediction(
  here: NatSummary | undefined,
  there: NatSummary | undefined,
  peerEndpoints: readonly string[],
): PortPredictionPlan | null {
  if (!here || !there || !isHardMapping(here)) return null;
  if (there.mapping !== 'endpoint-independent' || there.filtering === 'endpoint-independent') return null;
  const publicIp = here.globalV4 ? splitEndpoint(here.globalV4)?.address : undefined;
  const targets = peerEndpoints.filter((e) => {
    const ep = splitEndpoint(e);
    return ep !== null && !isPrivateAddress(ep.address);
  });
  if (!publicIp || targets.length === 0) return null;
  return { publicIp, targets };
}

// ---- how ---------------------------------------------------------------------------------------

/** What the predictor needs from the socket that owns it. */
export interface PortPredictorHooks {
  /** Seals a disco message to the peer, as the node's own socket would send it. */
  seal(peerKey: string, message: DiscoMessage): Uint8Array;
  /** Sends a disco message to the peer through the relay. */
  sendRelayed(peerKey: string, message: DiscoMessage): void;
  /** Sends a datagram for the peer `peerKey` from `via`, or from the node's own socket. Never throws. */
  send(buf: Uint8Array, port: number, address: string, via: UDXSocket | undefined, peerKey: string): void;
  /** The owner's say on starting an attempt for this peer now (its budget); true if absent. */
  mayStart?(peerKey: string): boolean;
  /** A datagram arrived on one of the predictor's sockets, from the endpoint `from`. */
  receive(buf: Buffer, from: string, via: UDXSocket): void;
  /** Whether direct paths are allowed at all just now. */
  directAllowed(): boolean;
  /** The peer's path as the engine sees it now; null once the peer is gone. */
  currentPath(peerKey: string): Path | null;
}

export class PortPredictor {
  /** The hard side's extra sockets, open until they lose or the predictor closes. */
  private readonly sockets = new Set<UDXSocket>();
  /** Which extra socket reaches which peer endpoint ("key|endpoint"): the winners. */
  private readonly sendVia = new Map<string, UDXSocket>();
  private readonly lastAttempt = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    /** The UDX instance of the node's socket, so a winning socket can carry streams. */
    private readonly udx: UDX,
    private readonly hooks: PortPredictorHooks,
    private readonly log: Logger,
  ) {}

  /**
   * Hard side: opens sockets towards the peer's public endpoints and asks the peer (over the
   * relay) to probe random ports of our public IP. Returns false when not started (direct paths
   * off, no target that is an endpoint, or tried within the last minute).
   */
  start(key: string, plan: PortPredictionPlan): boolean {
    const eps = plan.targets.map(splitEndpoint).filter((e): e is { address: string; port: number } => e !== null).slice(0, MAX_TARGETS);
    if (!this.hooks.directAllowed() || eps.length === 0 || this.closed || !this.mayTry(key)) return false;
    this.log.info({ peer: key.slice(0, 8), targets: plan.targets }, 'port prediction: opening sockets towards the peer');
    const opened: UDXSocket[] = [];
    for (let i = 0; i < BIRTHDAY_SOCKETS && this.sockets.size < BIRTHDAY_SOCKETS; i++) {
      const sock = this.udx.createSocket();
      try {
        sock.bind(0, '0.0.0.0');
      } catch {
        break;
      }
      sock.on('message', (msg, from) => this.hooks.receive(msg, formatEndpoint(from.host, from.port), sock));
      sock.on('error', () => undefined);
      this.sockets.add(sock);
      opened.push(sock);
    }
    const sendRound = (): void => {
      for (const sock of opened) {
        if (!this.sockets.has(sock)) continue;
        for (const ep of eps) this.hooks.send(this.hooks.seal(key, pingMessage()), ep.port, ep.address, sock, key);
      }
    };
    for (const at of BIRTHDAY_SEND_AT_MS) this.later(sendRound, at);
    for (const at of ASK_AT_MS) this.later(() => this.hooks.sendRelayed(key, { type: 'birthday', ip: plan.publicIp }), at);
    this.later(() => {
      const winners = new Set(this.sendVia.values());
      for (const sock of opened) {
        if (winners.has(sock)) continue;
        this.sockets.delete(sock);
        void sock.close().catch(() => undefined);
      }
    }, BIRTHDAY_LIFETIME_MS);
    return true;
  }

  /** Easy side, asked through the relay by the peer's own key: probe random ports of its public IP. */
  probe(key: string, ip: string): void {
    if (!this.hooks.directAllowed() || !this.mayTry(key)) return;
    this.log.info({ peer: key.slice(0, 8), ip }, "port prediction: probing the peer's ports");
    const ports = randomPorts(BIRTHDAY_PROBES);
    for (let i = 0; i < ports.length; i += BIRTHDAY_BATCH) {
      const batch = ports.slice(i, i + BIRTHDAY_BATCH);
      this.later(() => {
        // Stop once a direct path exists: the probes have done their work.
        const path = this.hooks.currentPath(key);
        if (path === null || path.kind === 'direct') return;
        for (const port of batch) this.hooks.send(this.hooks.seal(key, pingMessage()), port, ip, undefined, key);
      }, (i / BIRTHDAY_BATCH) * BIRTHDAY_BATCH_INTERVAL_MS);
    }
  }

  /** An authentic packet from the peer at `from` reached one of our sockets: that socket is the way to `from`. */
  answered(key: string, from: string, via: UDXSocket): void {
    const id = `${key}|${from}`;
    if (this.sendVia.has(id)) return;
    this.sendVia.set(id, via);
    this.log.info({ peer: key.slice(0, 8), endpoint: from }, 'port prediction: a predicted port answered');
  }

  /**
   * The peer is gone: its winning sockets are closed (unless they also win for another peer), so
   * they do not stay open, nor count against later attempts, for the node's lifetime.
   */
  forget(key: string): void {
    const prefix = `${key}|`;
    const released: UDXSocket[] = [];
    for (const [id, sock] of this.sendVia) {
      if (!id.startsWith(prefix)) continue;
      this.sendVia.delete(id);
      released.push(sock);
    }
    const stillWinning = new Set(this.sendVia.values());
    for (const sock of released) {
      if (stillWinning.has(sock) || !this.sockets.delete(sock)) continue;
      for (const st of [...sock.streams]) st.destroy();
      void sock.close().catch(() => undefined);
    }
  }

  /** The socket that reaches this endpoint of the peer, if port prediction found it; else the node's own socket is. */
  socketFor(key: string, endpoint: string): UDXSocket | undefined {
    return this.sendVia.get(`${key}|${endpoint}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // Streams still ending would hold their socket (and the process) until the peer acknowledges,
    // up to UDX's timeout: a node that is closing abandons them.
    for (const sock of this.sockets) for (const st of [...sock.streams]) st.destroy();
    for (const sock of this.sockets) void sock.close().catch(() => undefined);
    this.sockets.clear();
  }

  /** At most one attempt per peer a minute, whichever side starts it, and as the owner allows; records this one. */
  private mayTry(key: string): boolean {
    const now = performance.now();
    const last = this.lastAttempt.get(key);
    if (last !== undefined && now - last < BIRTHDAY_MIN_INTERVAL_MS) return false;
    if (this.hooks.mayStart && !this.hooks.mayStart(key)) return false;
    if (this.lastAttempt.size >= 4096) for (const [k, t] of this.lastAttempt) if (now - t >= BIRTHDAY_MIN_INTERVAL_MS) this.lastAttempt.delete(k);
    this.lastAttempt.set(key, now);
    return true;
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }
}

function pingMessage(): DiscoMessage {
  return { type: 'ping', txid: randomBytes(12) };
}
