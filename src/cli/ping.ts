// `traverse ping AGENT`: connect as a client and ping the agent over the peer path, saying which
// path each pong took, when the path became direct, and, if it never did, why.
import type { Command } from 'commander';
import { whyRelayed } from '../node/why-relayed.js';
import type { Path } from '../net/path.js';
import { addPeerOptions, startPeer, type PeerFlags } from './peer-options.js';
import { CommandFailed } from './errors.js';
import { intOption } from './options.js';
import { onShutdown } from './shutdown.js';

interface PingFlags extends PeerFlags {
  count: number;
  interval: number;
  timeout: number;
  json?: boolean;
}

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

export function registerPingCommand(program: Command): void {
  const cmd = program
    .command('ping')
    .description('connect to an agent as a client and ping it through the peer path (direct or relay)')
    .argument('<agent>', 'the agent\'s name on the coordination server')
    .option('-n, --count <n>', 'number of pings', intOption('--count', 1, 100_000), 5)
    .option('--interval <ms>', 'time between pings', intOption('--interval', 10, 60_000), 1000)
    .option('--timeout <ms>', 'how long to wait for each pong', intOption('--timeout', 10, 60_000), 2000)
    .option('--json', 'print one JSON object per pong and a summary object');
  addPeerOptions(cmd, { disableDirect: true })
    .addHelpText(
      'after',
      '\nExample:\n  traverse ping dev-box --server http://coord.example:8080 --token "$CLIENT_TOKEN"\n' +
        '  pong from dev-box via direct 203.0.113.101:41641 in 0.8 ms\n\nExit status: 0 when pongs came back, 1 otherwise, 2 for bad arguments.',
    )
    .action(async (agent: string, flags: PingFlags) => runPing(agent, flags));
}

async function runPing(agent: string, flags: PingFlags): Promise<void> {
  const started = performance.now();
  const node = await startPeer(flags, 'client', 'ping');
  const publishedMs = Math.round(performance.now() - started);
  onShutdown(() => node.close(), 1);
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  try {
    let peer;
    try {
      peer = await node.openTunnel(agent);
    } catch (err) {
      throw new CommandFailed((err as Error).message);
    }
    let timeToDirect: number | null = null;
    let lastPath: Path = node.magicsock.pathOf(peer.key);
    const onPath = (p: { key: string }, path: Path): void => {
      if (p.key !== peer.key) return;
      lastPath = path;
      if (path.kind === 'direct' && timeToDirect === null) {
        timeToDirect = Math.round(performance.now() - started);
        if (!flags.json) out(`direct connection established after ${timeToDirect} ms (${path.endpoint})`);
      } else if (!flags.json) {
        out(`path to ${agent} is now ${path.kind === 'direct' ? `direct ${path.endpoint}` : 'relay'}`);
      }
    };
    node.on('path', onPath);

    let pongs = 0;
    let lastPong: Path | null = null;
    for (let seq = 0; seq < flags.count; seq++) {
      const t0 = performance.now();
      const r = await node.magicsock.ping(peer.key, flags.timeout);
      if (r) {
        pongs++;
        lastPong = r.path;
        const ms = Math.round(r.latencyMs * 100) / 100;
        const endpoint = r.path.kind === 'direct' ? r.path.endpoint : null;
        if (flags.json) out(JSON.stringify({ seq, path: r.path.kind, endpoint, latencyMs: ms }));
        else out(`pong from ${agent} via ${r.path.kind === 'direct' ? `direct ${endpoint}` : 'relay'} in ${ms} ms`);
      } else if (!flags.json) {
        out(`no pong from ${agent} within ${flags.timeout} ms`);
      }
      const wait = flags.interval - (performance.now() - t0);
      if (seq < flags.count - 1 && wait > 0) await new Promise((res) => setTimeout(res, wait));
    }

    const final = lastPong ?? lastPath;
    let reason: string | null = null;
    if (final.kind === 'relay') {
      // Both netchecks explain a relayed path; ours may still be running.
      await Promise.race([node.netcheckSettled(), new Promise((res) => setTimeout(res, 4000))]);
      const latest = node.peer(peer.key) ?? peer;
      reason = whyRelayed({
        disabledHere: flags.disableDirect ?? false,
        blockedByServer: node.config?.blockDirect ?? false,
        hereName: 'this machine',
        peerName: agent,
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
    if (flags.json) out(JSON.stringify(summary));
    else if (final.kind === 'direct') out(`connected to ${agent} directly via ${final.endpoint}${timeToDirect !== null ? ` (direct after ${timeToDirect} ms)` : ''}`);
    else out(`connected to ${agent} through the relay: ${reason}`);
    if (pongs === 0) throw new CommandFailed(`no pong from ${agent} in ${flags.count} ping(s)`);
  } finally {
    node.close();
  }
}
