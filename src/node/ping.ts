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
  timeToDirectMs: number | null;
  /**
   * When this client had connected, learned its endpoints and published them: its first
   * coordination message (the tunnel request follows at once). Same origin as timeToDirectMs.
   */
  publishedMs: number;
  reason: string | null;
}

export interface PingResult {
  readonly summary: PingSummary;
  readonly replies: readonly PingReply[];
  /** How many pings were answered. */
  readonly pongs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

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
  try {
    for (let seq = 0; seq < options.count; seq++) {
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
      if (seq < options.count - 1 && wait > 0) await sleep(wait);
    }
  } finally {
    node.off('path', onPath);
  }

  const final = lastPong ?? lastPath;
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
    });
  }
  const summary: PingSummary = {
    summary: true,
    path: final.kind,
    endpoint: final.kind === 'direct' ? final.endpoint : null,
    timeToDirectMs: timeToDirect,
    publishedMs,
    reason,
  };
  return { summary, replies, pongs };
}
