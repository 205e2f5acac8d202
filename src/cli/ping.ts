// `traverse ping AGENT`: connect as a client and ping the agent over the peer path, saying which
// path each pong took, when the path became direct, and, if it never did, why.
import type { Command } from 'commander';
import { pingPeer } from '../node/ping.js';
import { addPeerOptions, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed } from './errors.js';
import { intOption } from './options.js';
import { summaryOf } from './command-list.js';

interface PingFlags extends PeerFlags {
  count: number;
  interval: number;
  timeout: number;
  json?: boolean;
}

export function registerPingCommand(program: Command): void {
  const cmd = program
    .command('ping')
    .description(summaryOf('ping'))
    .argument('<agent>', 'the agent\'s name on the coordination server')
    .option('-n, --count <n>', 'number of pings', intOption('--count', 1, 100_000), 5)
    .option('--interval <ms>', 'time between pings', intOption('--interval', 10, 60_000), 1000)
    .option('--timeout <ms>', 'how long to wait for each pong', intOption('--timeout', 10, 60_000), 2000)
    .option('--json', 'print one JSON object per pong and a summary object');
  addPeerOptions(cmd, { disableDirect: true })
    .addHelpText(
      'after',
      '\nExample:\n  traverse ping dev-box --server http://coord.example:8080 --token "$CLIENT_TOKEN"\n' +
        '  pong from dev-box via direct 203.0.113.101:41641 in 0.8 ms\n\nExit status: 0 when every ping got its pong, 1 when any was lost (or none came back), 130 when interrupted (the summary is printed first), 2 for bad arguments.',
    )
    .action(async (agent: string, flags: PingFlags) => runPing(agent, flags));
}

async function runPing(agent: string, flags: PingFlags): Promise<void> {
  const started = performance.now();
  const node = await startPeer(flags, 'client', 'ping');
  const publishedMs = Math.round(performance.now() - started);
  // Ctrl-C stops pinging; the summary of what was sent is still printed, and the exit is 130.
  const interrupted = new AbortController();
  const onSignal = (): void => {
    if (interrupted.signal.aborted) process.exit(130); // a second Ctrl-C: stop waiting
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  try {
    const peerKey = await tunnelTo(node, agent);
    const { summary, pongs } = await pingPeer(node, {
      peerKey,
      peerName: agent,
      count: flags.count,
      intervalMs: flags.interval,
      timeoutMs: flags.timeout,
      startedAt: started,
      publishedMs,
      disabledHere: flags.disableDirect ?? false,
      signal: interrupted.signal,
      onPath: ({ path, firstDirect, timeToDirectMs }) => {
        if (flags.json) return;
        if (firstDirect && path.kind === 'direct') out(`direct connection established after ${timeToDirectMs} ms (${path.endpoint})`);
        else out(`path to ${agent} is now ${path.kind === 'direct' ? `direct ${path.endpoint}` : 'relay'}`);
      },
      onReply: (r) => {
        if (r.ok) {
          if (flags.json) out(JSON.stringify({ seq: r.seq, path: r.path, endpoint: r.endpoint, latencyMs: r.latencyMs }));
          else out(`pong from ${agent} via ${r.path === 'direct' ? `direct ${r.endpoint}` : 'relay'} in ${r.latencyMs} ms`);
        } else if (!flags.json) {
          out(`no pong from ${agent} within ${r.timeoutMs} ms`);
        }
      },
    });
    if (flags.json) out(JSON.stringify(summary));
    else {
      // As ping(8) sums up: counts, loss, round trips; then the path and, if relayed, why.
      out(`--- ${agent} ping statistics ---`);
      const rtt = summary.rttMs ? `, round trip min/avg/max ${summary.rttMs.min}/${summary.rttMs.avg}/${summary.rttMs.max} ms` : '';
      out(`${summary.sent} sent, ${summary.received} received, ${summary.lossPercent}% loss${rtt}`);
      if (summary.path === 'direct') {
        out(`connected to ${agent} ${summary.transport === 'tcp' ? 'direct (tcp)' : 'directly'} via ${summary.endpoint}${summary.timeToDirectMs !== null ? ` (direct after ${summary.timeToDirectMs} ms)` : ''}`);
      } else out(`connected to ${agent} through the relay: ${summary.reason}`);
    }
    if (interrupted.signal.aborted) {
      process.exitCode = 130;
      return;
    }
    if (pongs === 0) throw new CommandFailed(`no pong from ${agent} in ${summary.sent} ping(s)`);
    if (pongs < summary.sent) throw new CommandFailed(`${summary.sent - pongs} of ${summary.sent} pings to ${agent} got no pong`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    node.close();
  }
}
