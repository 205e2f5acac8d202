// Throughput to an agent over the current peer path (what `traverse speedtest` runs, like
// `coder speedtest`): the agent sends (download) or swallows (upload) for a number of seconds.
import type { Duplex } from 'node:stream';
import type { Path } from '../net/path.js';
import type { CarrierKind } from '../tunnel/streams.js';
import type { PeerNode } from './peer-node.js';

export type SpeedtestDirection = 'download' | 'upload';

export interface SpeedtestResult {
  direction: SpeedtestDirection;
  path: 'direct' | 'relay';
  endpoint: string | null;
  /** What carried the bytes at the end: a TCP lane or UDX (see README, "TCP lanes"). */
  carrier: CarrierKind;
  bytes: number;
  seconds: number;
  mbitPerSecond: number;
}

export interface SpeedtestOptions {
  /** The agent's node key (from PeerNode.openTunnel). */
  readonly peerKey: string;
  readonly directions: readonly SpeedtestDirection[];
  /** How long each direction runs. */
  readonly seconds: number;
  /**
   * How long to give hole punching first, so the test measures the path a user would get (ms;
   * default 3000; 0: measure at once).
   */
  readonly waitForDirectMs?: number;
  /** Each direction's result, as soon as it is measured. */
  readonly onResult?: (result: SpeedtestResult) => void;
}

/** The agent refused the speedtest stream (or it could not be opened). */
export class SpeedtestRefused extends Error {
  override readonly name = 'SpeedtestRefused';
  constructor(readonly reason: string) {
    super(`speedtest refused: ${reason}`);
  }
}

/** Runs the directions one after the other; rejects with SpeedtestRefused or a stream's error. */
export async function speedtest(node: PeerNode, options: SpeedtestOptions): Promise<SpeedtestResult[]> {
  const wait = options.waitForDirectMs ?? 3000;
  if (wait > 0) await waitForDirect(node, options.peerKey, wait);
  const results: SpeedtestResult[] = [];
  for (const d of options.directions) {
    const r = await measure(node, options.peerKey, d, options.seconds);
    results.push(r);
    options.onResult?.(r);
  }
  return results;
}

/** Resolves once the path to the peer is direct, after `ms`, or at once if direct is not allowed. */
export function waitForDirect(node: PeerNode, peerKey: string, ms: number): Promise<void> {
  if (node.magicsock.pathOf(peerKey).kind === 'direct' || !node.directAllowed) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      node.off('path', onPath);
      resolve();
    }
    function onPath(p: { key: string }, path: Path): void {
      if (p.key === peerKey && path.kind === 'direct') done();
    }
    node.on('path', onPath);
  });
}

/** One direction of a speedtest. */
export async function measure(node: PeerNode, peerKey: string, direction: SpeedtestDirection, seconds: number): Promise<SpeedtestResult> {
  let stream: Duplex;
  try {
    stream = await node.streams.open(peerKey, { kind: 'speedtest', direction, seconds });
  } catch (err) {
    throw new SpeedtestRefused((err as Error).message);
  }
  const path = node.magicsock.pathOf(peerKey);
  const started = performance.now();
  let bytes = 0;
  // Sampled while the stream is open (a closed one is no longer known to the manager).
  let carrier: CarrierKind = 'udx';
  // A TCP lane opened from the relay (UDP blocked) is a direct path too: its remote end.
  let laneEndpoint: string | null = null;
  const sample = (): void => {
    carrier = node.streams.carrierKind(stream) ?? carrier;
    laneEndpoint = node.streams.laneEndpoint(stream) ?? laneEndpoint;
  };
  const sampler = setInterval(sample, 100);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      if (direction === 'download') {
        stream.on('data', (d: Buffer) => (bytes += d.length));
        stream.on('end', () => {
          stream.end();
          resolve();
        });
      } else {
        const chunk = Buffer.alloc(64 << 10, 0x5a);
        const until = started + seconds * 1000;
        stream.resume();
        stream.on('end', () => resolve());
        const pump = (): void => {
          while (performance.now() < until) {
            bytes += chunk.length;
            if (!stream.write(chunk)) {
              stream.once('drain', pump);
              return;
            }
          }
          stream.end();
        };
        pump();
      }
    });
  } finally {
    clearInterval(sampler);
  }
  sample();
  const elapsed = (performance.now() - started) / 1000;
  return {
    direction,
    path: path.kind === 'relay' && laneEndpoint !== null ? 'direct' : path.kind,
    endpoint: path.kind === 'direct' ? path.endpoint : laneEndpoint,
    carrier,
    bytes,
    seconds: elapsed,
    mbitPerSecond: (bytes * 8) / elapsed / 1e6,
  };
}
