// `traverse agent`: the workspace side. Connects to the coordination server, publishes its
// endpoints, answers peers the server vouches for, and runs until stopped.
import type { Command } from 'commander';
import { describePath } from '../net/path.js';
import { AllowListError, DEFAULT_ALLOWED_TARGETS, agentService, nodeAddresses, type AgentService } from '../node/agent.js';
import type { PortMappingReport } from '../portmap/report.js';
import { addPeerOptions, exitWhenClosedForGood, startPeer, type PeerFlags } from './peer-options.js';
import { collect, intOption } from './options.js';
import { UsageError } from './errors.js';
import { onShutdown } from './shutdown.js';
import { summaryOf } from './command-list.js';

interface AgentFlags extends PeerFlags {
  allowTarget?: string[];
  maxStreams: number;
}

export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command('agent')
    .description(summaryOf('agent'));
  addPeerOptions(cmd, { disableDirect: true })
    .option(
      '--allow-target <host:port>',
      `what clients may reach through this agent (repeatable): IP, CIDR, host name or *, with a port, a-b or * (default: ${DEFAULT_ALLOWED_TARGETS.join(', ')})`,
      collect,
    )
    .option('--max-streams <n>', 'open streams allowed per client', intOption('--max-streams', 1, 65536), 256)
    .addHelpText(
      'after',
      '\nExamples:\n  traverse agent --server http://coord.example:8080 --token "$AGENT_TOKEN"\n' +
        "  traverse agent --allow-target '127.0.0.1:*' --allow-target '10.0.0.0/8:5432'\n\nRuns until SIGINT or SIGTERM.",
    )
    .action(async (flags: AgentFlags) => {
      let service: AgentService;
      try {
        service = agentService(flags.allowTarget ?? DEFAULT_ALLOWED_TARGETS);
      } catch (err) {
        throw new UsageError(err instanceof AllowListError ? `--allow-target ${err.message}` : String(err));
      }
      const node = await startPeer(flags, 'agent', 'agent', {
        acceptStream: service.acceptStream,
        streamLimits: { maxStreamsPerPeer: flags.maxStreams },
      });
      const here = nodeAddresses(node);
      const cfg = node.config;
      const say = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      say(`agent "${cfg?.identity.name}" connected to ${node.server ?? flags.server}; UDP port ${here.port}; endpoints ${here.endpoints.join(', ') || 'none'}`);
      say(`clients may reach: ${service.allowed.join(', ')}`);
      // A restarted workspace: the server tells the new agent that it replaced the old process.
      if (cfg?.notice) say(`note: ${cfg.notice}`);
      node.on('notice', (m) => say(`note: ${m}`));
      // Each client process is a node of its own (a forward, an ssh session, a ping): name it by
      // its key. A node republishes on every change of its own (netcheck done, a new observed
      // address); say so only when its endpoints actually changed.
      const seen = new Map<string, string>();
      const who = (p: { name: string; key: string | null }): string => `${p.name}${p.key ? ` [${p.key.slice(0, 8)}]` : ''}`;
      node.on('peer', (p) => {
        const eps = p.endpoints.join(',');
        if (seen.get(p.key) === eps) return;
        seen.set(p.key, eps);
        say(`peer ${who(p)} (${p.kind}) published ${p.endpoints.length} endpoint(s)`);
      });
      node.on('path', (p, path) => say(`tunnel to ${who(p)}: ${describePath(path)}`));
      node.on('peerGone', (p, how) => {
        if (p.key) seen.delete(p.key);
        say(`peer ${who(p)} ${how}`);
      });
      node.on('coordinator', (state, detail) => {
        if (state === 'closed') return;
        // Connected again: say where, since with several servers it may be another one.
        if (state === 'connected') return say(`coordination server: connected to ${node.server ?? flags.server}`);
        // Each new attempt reports 'reconnecting' again without a reason: the line with one said it.
        if (state === 'reconnecting' && !detail) return;
        say(`coordination server: ${state}${detail ? ` (${detail})` : ''}`);
      });
      exitWhenClosedForGood(node, 'agent', () => undefined);
      node.on('netcheck', (r) =>
        say(`netcheck: udp ${r.udp}, public ${r.globalV4 ?? 'none'}, mapping ${r.mapping}, filtering ${r.filtering}, hairpinning ${r.hairpinning ?? 'unknown'}${portMappingNote(r.portMapping)}`),
      );
      // SIGINT/SIGTERM: a clean stop (exit 0), not the server closing us.
      onShutdown(async () => {
        node.close();
        await node.whenClosed; // the router's mapping deleted
      });
      await new Promise<never>(() => undefined);
    });
}

/** ", port mapped 203.0.113.2:4000 by pcp" / " (not trusted: ...)" for the agent's netcheck line. */
function portMappingNote(pm: PortMappingReport | null): string {
  if (!pm?.mapping) return '';
  return `, port mapped ${pm.mapping.external} by ${pm.mapping.protocol}${pm.trusted === false ? ' (not trusted)' : ''}`;
}
