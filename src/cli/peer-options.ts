// Flags every peer command shares (agent, ping, forward, proxy, speedtest), with their
// environment twins, and turning them into a running PeerNode.
import { Command, Option } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NodeKey } from '../identity/node-key.js';
import { PeerNode, type PeerNodeOptions } from '../node/peer-node.js';
import { tuneCollectorForStreams, type StreamCommand } from './collector.js';
import { createLogger } from '../log/logger.js';
import { CommandFailed, UsageError } from './errors.js';
import { collect, portOption, serverListFlag } from './options.js';
import { stunServerList } from './stun-servers.js';
import { addTokenOptions } from './token-source.js';
import { addLogOptions } from './log-options.js';
import { addCaOption, trustFlag } from './ca-option.js';

export interface PeerFlags {
  server?: string;
  token?: string;
  tokenFile?: string;
  stun?: string[];
  port?: number;
  keyFile?: string;
  disableDirect?: boolean;
  tcpLane?: boolean;
  relayLane?: boolean;
  portMapping?: boolean;
  ca?: string;
}

export function addPeerOptions(cmd: Command, opts: { disableDirect: boolean; stdinToken?: boolean }): Command {
  addTokenOptions(cmd, { stdin: opts.stdinToken ?? true });
  addLogOptions(cmd, 'warn');
  cmd
    .addOption(new Option(
        '--server <urls>',
        'coordination server URL, e.g. https://coord.example:8080; several, comma-separated, are replicas: the node moves to another when its server goes away',
      ).env('TRAVERSE_SERVER'));
  addCaOption(cmd)
    .option('--stun <host:port>', 'STUN server (repeatable; "disable" turns STUN off); replaces the list the server sends', collect)
    .option('--port <n>', 'local UDP port for the node\'s socket (default: any free port)', portOption)
    .option(
      '--key-file <file>',
      'keep the node key in this file (created if missing); default: the agent keeps $TRAVERSE_STATE_DIR/agent.key, each client process makes a fresh key',
    );
  if (opts.disableDirect) cmd.option('--disable-direct', 'never use a direct path: everything goes through the relay');
  cmd.option('--no-port-mapping', 'do not ask the router to map the node\'s UDP port (PCP, NAT-PMP, UPnP IGD) (env TRAVERSE_PORT_MAPPING=0)');
  cmd.option('--no-tcp-lane', 'keep streams on UDX: do not open direct TCP lanes for them (env TRAVERSE_TCP_LANE=0)');
  cmd.option('--no-relay-lane', 'keep relayed streams on relayed UDX datagrams: do not open relay lanes through the server (env TRAVERSE_RELAY_LANE=0)');
  return cmd;
}

/** --no-port-mapping, or its twin TRAVERSE_PORT_MAPPING (0 off, 1 on, the default). */
export function portMappingWanted(flags: { portMapping?: boolean }): boolean {
  const env = process.env.TRAVERSE_PORT_MAPPING;
  if (env !== undefined && env !== '' && env !== '0' && env !== '1') {
    throw new UsageError(`TRAVERSE_PORT_MAPPING="${env}": use 0 (no port mapping) or 1 (the default)`);
  }
  return (flags.portMapping ?? true) && env !== '0';
}

export function defaultKeyFile(kind: 'agent' | 'client'): string {
  const base = process.env.TRAVERSE_STATE_DIR ?? join(homedir(), '.traverse');
  return join(base, `${kind}.key`);
}

/**
 * One node per process: every client command (forward, proxy, ping, speedtest) joins with a
 * key of its own, so any number of them run side by side under one identity. The agent keeps
 * its key in a file, so a restarted workspace comes back as the same node.
 */
function nodeKeyFor(kind: 'agent' | 'client', keyFile: string | undefined): NodeKey {
  if (keyFile) return NodeKey.loadOrCreate(keyFile);
  return kind === 'agent' ? NodeKey.loadOrCreate(defaultKeyFile('agent')) : NodeKey.generate();
}

export async function startPeer(
  flags: PeerFlags,
  kind: 'agent' | 'client',
  /** The command (also the logger's name): one of collector.ts's, whose loader tuned the collector before compiling it. */
  command: StreamCommand,
  extra: Partial<Pick<PeerNodeOptions, 'acceptStream' | 'streamLimits' | 'quickStart' | 'tunnelTo'>> = {},
): Promise<PeerNode> {
  if (!flags.server) throw new UsageError('no server: pass --server URL or set TRAVERSE_SERVER');
  if (!flags.token) throw new UsageError('no token: pass --token TOKEN or set TRAVERSE_TOKEN');
  const server = serverListFlag(flags.server).map((u) => u.href);
  const trust = trustFlag(flags.ca);
  for (const [name, what] of [['TRAVERSE_TCP_LANE', 'TCP lanes'], ['TRAVERSE_RELAY_LANE', 'relay lanes']] as const) {
    const lane = process.env[name];
    if (lane !== undefined && lane !== '' && lane !== '0' && lane !== '1') {
      throw new UsageError(`${name}="${lane}": use 0 (no ${what}) or 1 (the default)`);
    }
  }
  tuneCollectorForStreams();
  const key = nodeKeyFor(kind, flags.keyFile);
  const portMapping = portMappingWanted(flags);
  const stun = stunServerList(flags.stun);
  try {
    return await PeerNode.start({
      server,
      token: flags.token,
      key,
      role: kind,
      stun: stun ? (stun.disabled ? { disabled: true, servers: [] } : { disabled: false, servers: stun.servers }) : null,
      disableDirect: flags.disableDirect ?? false,
      portMapping,
      tcpLane: (flags.tcpLane ?? true) && process.env.TRAVERSE_TCP_LANE !== '0',
      relayLane: (flags.relayLane ?? true) && process.env.TRAVERSE_RELAY_LANE !== '0',
      logger: createLogger(command, process.env.TRAVERSE_LOG_LEVEL ?? 'warn'),
      trust,
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      // One-shot commands fail when the server cannot be reached; the agent keeps trying.
      ...(kind === 'client'
        ? { connectTimeoutMs: 10_000 }
        : { onConnectProblem: (d: string) => process.stderr.write(`traverse: waiting for ${flags.server} (${d}); retrying\n`) }),
      ...extra,
    });
  } catch (err) {
    throw new CommandFailed(`cannot connect to ${flags.server}: ${(err as Error).message}`);
  }
}

/**
 * Opens the tunnel to an agent, failing the command with the coordinator's reason. On failure
 * the node is closed, so the command exits instead of idling on an open socket.
 */
export async function tunnelTo(node: PeerNode, agent: string): Promise<string> {
  try {
    return (await node.openTunnel(agent)).key;
  } catch (err) {
    node.close();
    throw new CommandFailed((err as Error).message);
  }
}

/**
 * For commands that run until stopped (agent, forward): when the server closes this node for
 * good (a revoked or expired token, a newer agent process, a refused key), say why on stderr and
 * exit 1 rather than run on with nothing to serve. A stop the user asked for is not that.
 */
export function exitWhenClosedForGood(node: PeerNode, what: string, cleanup: () => void): void {
  node.on('coordinator', (state, detail) => {
    // node.isClosed: the close is our own (a stop the user asked for, or a failed start).
    if (state !== 'closed' || node.isClosed) return;
    process.stderr.write(`traverse: the coordination server closed this ${what}'s connection: ${detail ?? 'no reason given'}\n`);
    cleanup();
    node.close();
    process.exit(1);
  });
}
