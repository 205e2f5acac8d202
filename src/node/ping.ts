// Pinging a tunnel peer over the peer path (what `traverse ping` runs): which path each pong
// took, when the path became direct, and, if it never did, why.
import type { Path } from '../net/path.js';
import type { PeerNode } from './peer-node.js';
import { whyRelayed } from './why-relayed.js';

export interface PingOptions {
  /** The peer's node key (from PeerNode.openTunnel). */
  readonly peerKey: string;
  /** The peer's name, for the why-relayed sentence. */
  readonly peerName: string;
  readonly count: number;
  /** Time from one ping's start to the next (ms). */
  readonly intervalMs: number;
  /** How long to wait for each pong (ms). */
  readonly timeoutMs: number;
  /**
   * performance.now() when the node started; timeToDirectMs counts from it (default: when
   * pingPeer was called).
   */
  readonly startedAt?: number;
  /** Copied into the summary (see PingSummary.publishedMs); default: now - startedAt. */
  readonly publishedMs?: number;
  /** This side runs relay-only (--disable-direct); default: the node does not allow direct paths and the server does not block them. */
  readonly disabledHere?: boolean;
  /** How long to wait for our own netcheck before explaining a relayed path (ms). */
  readonly netcheckWaitMs?: number;
  /** Each ping's outcome, as it happens. */
  readonly onReply?: (reply: PingReply) => void;
  /** Each path change while pinging. */
  readonly onPath?: (change: PathChange) => void;
  /**
   * A relayed path that hole punching may still upgrade is given until this long after the
   * tunnel opened before the summary calls it relayed (ms; default 2000). `ping -n 1` would
   * otherwise report the relay its first pong took while the direct path was moments away.
   */
  readonly directWaitMs?: number;
  /** Stops pinging (Ctrl-C): the summary covers the pings sent so far. */
  readonly signal?: AbortSignal;
}

/** One ping: a pong and the path it came back on, or nothing within the timeout. */
export type PingReply =
  | { readonly seq: number; readonly ok: true; readonly path: 'direct' | 'relay'; readonly endpoint: string | null; readonly latencyMs: number }
  | { readonly seq: number; readonly ok: false; readonly timeoutMs: number };

export interface PathChange {
  readonly path: Path;
  /** This change is the first direct path: timeToDirectMs is set by it. */
  readonly firstDirect: boolean;
  readonly timeToDirectMs: number | null;
}

/** The `traverse ping --json` summary line, field for field. */
export interface PingSummary {
  summary: true;
  path: 'direct' | 'relay';
  endpoint: string | null;
  /**
   * What carries a direct path: UDP, or TCP when UDP is blocked and a TCP lane to the peer's
   * vouched IP opened instead (the tunnel's streams run on it; pings still cross the relay).
   * Null for the relay.
   */
  transport: 'udp' | 'tcp' | null;
  timeToDirectMs: number | null;
  /**
   * When this client had connected, learned its endpoints and published them: its first
   * coordination message (the tunnel request follows at once). Same origin as timeToDirectMs.
   */
  publishedMs: number;
  reason: string | null;
  /** Pings sent and pongs received, and the share lost (0-100), as ping(8) sums up. */
  sent: number;
  received: number;
  lossPercent: number;
  /** Round trips of the pongs received (ms); null when none came back. */
  rttMs: { min: number; avg: number; max: number } | null;
}

export interface PingResult {
  readonly summary: PingSummary;
  readonly replies: readonly PingReply[];
  /** How many pings were answered. */
  readonly pongs: number;
}

/** Waits `ms`, or less if `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((res) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      res();
    }
    signal?.addEventListener('abort', done);
  });
}

/** Pings the peer `count` times and sums up the path. Never throws for lost pongs: see `pongs`. */
export async function pingPeer(node: PeerNode, options: PingOptions): Promise<PingResult> {
  const started = options.startedAt ?? performance.now();
  const publishedMs = options.publishedMs ?? Math.round(performance.now() - started);
  const { peerKey } = options;
  const known = node.peer(peerKey);
  if (!known) throw new Error(`unknown peer ${options.peerName}: open a tunnel to it first`);

  let timeToDirect: number | null = null;
  let lastPath: Path = node.magicsock.pathOf(peerKey);
  const onPath = (p: { key: string }, path: Path): void => {
    if (p.key !== peerKey) return;
    lastPath = path;
    const firstDirect = path.kind === 'direct' && timeToDirect === null;
    if (firstDirect) timeToDirect = Math.round(performance.now() - started);
    options.onPath?.({ path, firstDirect, timeToDirectMs: timeToDirect });
  };
  node.on('path', onPath);

  const replies: PingReply[] = [];
  let pongs = 0;
  let lastPong: Path | null = null;
  const tunnelAt = performance.now();
  try {
    for (let seq = 0; seq < options.count && !options.signal?.aborted; seq++) {
      const t0 = performance.now();
      const r = await node.magicsock.ping(peerKey, options.timeoutMs);
      let reply: PingReply;
      if (r) {
        pongs++;
        lastPong = r.path;
        reply = {
          seq,
          ok: true,
          path: r.path.kind,
          endpoint: r.path.kind === 'direct' ? r.path.endpoint : null,
          latencyMs: Math.round(r.latencyMs * 100) / 100,
        };
      } else {
        reply = { seq, ok: false, timeoutMs: options.timeoutMs };
      }
      replies.push(reply);
      options.onReply?.(reply);
      const wait = options.intervalMs - (performance.now() - t0);
      if (seq < options.count - 1 && wait > 0) await sleep(wait, options.signal);
    }
    // Punching may be moments from a direct path: let it finish before summing up.
    const waitLeft = (options.directWaitMs ?? 2000) - (performance.now() - tunnelAt);
    if (lastPath.kind === 'relay' && node.directAllowed && waitLeft > 0 && !options.signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          node.off('path', onDirect);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const onDirect = (p: { key: string }, path: Path): void => {
          if (p.key === peerKey && path.kind === 'direct') done();
        };
        const timer = setTimeout(done, waitLeft);
        node.on('path', onDirect);
        options.signal?.addEventListener('abort', done);
      });
    }
  } finally {
    node.off('path', onPath);
  }

  // The path now, if direct; else the one the last pong took (or the relay); and if that is the
  // relay, a direct TCP lane if one opens (UDP blocked somewhere, TCP not).
  let final = lastPath.kind === 'direct' ? lastPath : (lastPong ?? lastPath);
  if (final.kind === 'relay' && node.directAllowed && !options.signal?.aborted) {
    const tcp = await node.streams.openTcpPath(peerKey);
    if (tcp) {
      final = tcp;
      timeToDirect ??= Math.round(performance.now() - started);
    }
  }
  let reason: string | null = null;
  if (final.kind === 'relay') {
    // Both netchecks explain a relayed path; ours may still be running.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([node.netcheckSettled(), new Promise((res) => (timer = setTimeout(res, options.netcheckWaitMs ?? 4000)))]);
    clearTimeout(timer);
    const blockedByServer = node.config?.blockDirect ?? false;
    const latest = node.peer(peerKey) ?? known;
    reason = whyRelayed({
      disabledHere: options.disabledHere ?? (!node.directAllowed && !blockedByServer),
      blockedByServer,
      hereName: 'this machine',
      peerName: options.peerName,
      here: node.netcheck,
      peer: latest.netcheck,
      peerHasEndpoints: latest.endpoints.length > 0,
      hereEndpoints: node.magicsock.endpoints,
      peerEndpoints: latest.endpoints,
    });
  }
  const rtts = replies.flatMap((r) => (r.ok ? [r.latencyMs] : []));
  const round = (x: number): number => Math.round(x * 100) / 100;
  const summary: PingSummary = {
    summary: true,
    path: final.kind,
    endpoint: final.kind === 'direct' ? final.endpoint : null,
    transport: final.kind === 'direct' ? (final.transport ?? 'udp') : null,
    timeToDirectMs: timeToDirect,
    publishedMs,
    reason,
    sent: replies.length,
    received: pongs,
    lossPercent: replies.length === 0 ? 0 : round(((replies.length - pongs) / replies.length) * 100),
    rttMs: rtts.length === 0 ? null : { min: Math.min(...rtts), avg: round(rtts.reduce((a, b) => a + b, 0) / rtts.length), max: Math.max(...rtts) },
  };
  return { summary, replies, pongs };
}
