// `traverse speedtest AGENT`: throughput over the current peer path, like `coder speedtest`.
import type { Command } from 'commander';
import type { Duplex } from 'node:stream';
import type { Path } from '../net/path.js';
import type { PeerNode } from '../node/peer-node.js';
import type { CarrierKind } from '../tunnel/streams.js';
import { addPeerOptions, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed, UsageError } from './errors.js';
import { intOption } from './options.js';
import { onShutdown } from './shutdown.js';

interface SpeedtestFlags extends PeerFlags {
  seconds: number;
  direction: string;
  json?: boolean;
}

export interface SpeedtestResult {
  direction: 'download' | 'upload';
  path: 'direct' | 'relay';
  endpoint: string | null;
  /** What carried the bytes at the end: a TCP lane or UDX (see README, "TCP lanes"). */
  carrier: CarrierKind;
  bytes: number;
  seconds: number;
  mbitPerSecond: number;
}

export function registerSpeedtestCommand(program: Command): void {
  const cmd = program
    .command('speedtest')
    .description('measure throughput to an agent over the current path (direct or relay)')
    .argument('<agent>', "the agent's name on the coordination server")
    .option('-t, --seconds <n>', 'how long each direction runs', intOption('--seconds', 1, 60), 5)
    .option('--direction <dir>', 'download, upload or both', 'both')
    .option('--json', 'print one JSON object per direction');
  addPeerOptions(cmd, { disableDirect: true }).action(async (agent: string, flags: SpeedtestFlags) => {
    const d0 = flags.direction;
    const dirs: readonly ('download' | 'upload')[] | null = d0 === 'both' ? ['download', 'upload'] : d0 === 'download' || d0 === 'upload' ? [d0] : null;
    if (!dirs) throw new UsageError(`--direction must be download, upload or both, not "${flags.direction}"`);
    const node = await startPeer(flags, 'client', 'speedtest');
    onShutdown(() => node.close(), 1);
    try {
      const peerKey = await tunnelTo(node, agent);
      // Give hole punching its first moments, so the test measures the path a user would get.
      await waitForDirect(node, peerKey, 3000);
      for (const d of dirs) {
        const r = await measure(node, peerKey, d, flags.seconds);
        if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stdout.write(
            `${d.padEnd(8)} ${r.mbitPerSecond.toFixed(1)} Mbit/s over ${r.path === 'direct' ? `direct ${r.endpoint}, ${r.carrier === 'tcp' ? 'TCP lane' : 'UDX'}` : 'relay'} (${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(2)} s)\n`,
          );
      }
    } finally {
      node.close();
    }
  });
}

function waitForDirect(node: PeerNode, peerKey: string, ms: number): Promise<void> {
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

async function measure(node: PeerNode, peerKey: string, direction: 'download' | 'upload', seconds: number): Promise<SpeedtestResult> {
  let stream: Duplex;
  try {
    stream = await node.streams.open(peerKey, { kind: 'speedtest', direction, seconds });
  } catch (err) {
    throw new CommandFailed(`speedtest refused: ${(err as Error).message}`);
  }
  const path = node.magicsock.pathOf(peerKey);
  const started = performance.now();
  let bytes = 0;
  // Sampled while the stream is open (a closed one is no longer known to the manager).
  let carrier: CarrierKind = 'udx';
  const sample = (): void => {
    carrier = node.streams.carrierKind(stream) ?? carrier;
  };
  const sampler = setInterval(sample, 100);
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
  clearInterval(sampler);
  sample();
  const elapsed = (performance.now() - started) / 1000;
  return {
    direction,
    path: path.kind,
    endpoint: path.kind === 'direct' ? path.endpoint : null,
    carrier,
    bytes,
    seconds: elapsed,
    mbitPerSecond: (bytes * 8) / elapsed / 1e6,
  };
}

