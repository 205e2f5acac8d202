// `traverse agent`: the workspace side. Connects to the coordination server, publishes its
// endpoints, answers peers the server vouches for, and runs until stopped.
import type { Command } from 'commander';
import { describePath } from '../magicsock/path.js';
import { addPeerOptions, startPeer, type PeerFlags } from './peer-options.js';
import { onShutdown } from './shutdown.js';

export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command('agent')
    .description('run the workspace agent: reachable by the clients the server allows, directly or through the relay');
  addPeerOptions(cmd, { disableDirect: true })
    .addHelpText('after', '\nExample:\n  traverse agent --server http://coord.example:8080 --token "$AGENT_TOKEN"\n\nRuns until SIGINT or SIGTERM.')
    .action(async (flags: PeerFlags) => {
      const node = await startPeer(flags, 'agent', 'agent');
      const cfg = node.config;
      const say = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      say(`agent "${cfg?.identity.name}" connected to ${flags.server}; UDP port ${node.magicsock.port}; endpoints ${node.magicsock.endpoints.join(', ') || 'none'}`);
      node.on('peer', (p) => say(`peer ${p.name} (${p.kind}) published ${p.endpoints.length} endpoint(s)`));
      node.on('path', (p, path) => say(`tunnel to ${p.name}: ${describePath(path)}`));
      node.on('peerGone', (p, how) => say(`peer ${p.name} ${how}`));
      node.on('coordinator', (state, detail) => {
        if (state === 'connected') return;
        say(`coordination server: ${state}${detail ? ` (${detail})` : ''}`);
        if (state === 'closed') {
          // The server refused us for good (revoked token, replaced by another agent).
          process.stderr.write(`traverse: the coordination server closed this agent's connection: ${detail ?? 'no reason given'}\n`);
          node.close();
          process.exit(1);
        }
      });
      node.on('netcheck', (r) =>
        say(`netcheck: udp ${r.udp}, public ${r.globalV4 ?? 'none'}, mapping ${r.mapping}, filtering ${r.filtering}, hairpinning ${r.hairpinning ?? 'unknown'}`),
      );
      onShutdown(() => node.close());
      await new Promise<never>(() => undefined);
    });
}
