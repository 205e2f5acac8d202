// `traverse speedtest AGENT`: throughput over the current peer path, like `coder speedtest`.
import type { Command } from 'commander';
import { SpeedtestRefused, speedtest, type SpeedtestResult } from '../node/speedtest.js';
import { addPeerOptions, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed, UsageError } from './errors.js';
import { intOption } from './options.js';
import { onShutdown } from './shutdown.js';
import { summaryOf } from './command-list.js';

interface SpeedtestFlags extends PeerFlags {
  seconds: number;
  direction: string;
  json?: boolean;
}

/** Kept for callers that read `--json` lines: the type lives in src/node/speedtest.ts. */
export type { SpeedtestResult };

export function registerSpeedtestCommand(program: Command): void {
  const cmd = program
    .command('speedtest')
    .description(summaryOf('speedtest'))
    .argument('<agent>', "the agent's name on the coordination server")
    .option('-t, --seconds <n>', 'how long each direction runs', intOption('--seconds', 1, 60), 5)
    .option('--direction <dir>', 'download, upload or both', 'both')
    .option('--json', 'print one JSON object per direction');
  addPeerOptions(cmd, { disableDirect: true }).action(async (agent: string, flags: SpeedtestFlags) => {
    const d0 = flags.direction;
    const dirs: readonly ('download' | 'upload')[] | null = d0 === 'both' ? ['download', 'upload'] : d0 === 'download' || d0 === 'upload' ? [d0] : null;
    if (!dirs) throw new UsageError(`--direction must be download, upload or both, not "${flags.direction}"`);
    const node = await startPeer(flags, 'client', 'speedtest');
    onShutdown(() => node.close(), 130);
    try {
      const peerKey = await tunnelTo(node, agent);
      const print = (r: SpeedtestResult): void => {
        if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stdout.write(
            `${r.direction.padEnd(8)} ${r.mbitPerSecond.toFixed(1)} Mbit/s over ${r.path === 'direct' ? `direct ${r.endpoint}, ${r.carrier === 'tcp' ? 'TCP lane' : 'UDX'}` : `relay, ${r.carrier === 'relay-lane' ? 'relay lane' : 'UDX datagrams'}`} (${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(2)} s)\n`,
          );
      };
      try {
        // Gives hole punching its first moments, so the test measures the path a user would get.
        await speedtest(node, { peerKey, directions: dirs, seconds: flags.seconds, waitForDirectMs: 3000, onResult: print });
      } catch (err) {
        if (err instanceof SpeedtestRefused) throw new CommandFailed(err.message);
        throw err;
      }
    } finally {
      node.close();
    }
  });
}
