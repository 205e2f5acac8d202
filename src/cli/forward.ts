// `traverse forward AGENT LOCAL_PORT:TARGET_HOST:TARGET_PORT...`: local TCP ports that lead, over
// the encrypted peer path, to targets inside the workspace (like `ssh -L` or `coder port-forward`).
import type { Command } from 'commander';
import { describePath } from '../net/path.js';
import { ForwardListenError, startForwards, type Forwarder } from '../node/forward.js';
import { formatEndpoint, parsePort } from '../net/endpoint.js';
import { addPeerOptions, exitWhenClosedForGood, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed, UsageError } from './errors.js';
import { onShutdown } from './shutdown.js';
import { summaryOf } from './command-list.js';

interface ForwardSpec {
  readonly localPort: number;
  readonly target: string;
  readonly text: string;
}

interface ForwardFlags extends PeerFlags {
  bind: string;
}

/** "8080:localhost:80" or "8080:[::1]:80"; "8080" alone means "8080:localhost:8080". */
export function parseForwardSpec(text: string): ForwardSpec {
  const m = /^(\d{1,5})(?::(.+):(\d{1,5}))?$/.exec(text);
  if (!m) throw new UsageError(`"${text}": expected LOCAL_PORT:TARGET_HOST:TARGET_PORT, e.g. 8080:localhost:80`);
  try {
    const localPort = parsePort(m[1]!, 'local port');
    if (m[2] === undefined) return { localPort, target: `localhost:${localPort}`, text };
    const host = m[2].startsWith('[') && m[2].endsWith(']') ? m[2].slice(1, -1) : m[2];
    const port = parsePort(m[3]!, 'target port');
    if (port === 0) throw new UsageError(`"${text}": target port 0`);
    return { localPort, target: formatEndpoint(host, port), text };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`"${text}": ${(err as Error).message}`);
  }
}

export function registerForwardCommand(program: Command): void {
  const cmd = program
    .command('forward')
    .description(summaryOf('forward'))
    .argument('<agent>', "the agent's name on the coordination server")
    .argument('<spec...>', 'LOCAL_PORT:TARGET_HOST:TARGET_PORT (the agent connects to TARGET from inside the workspace)')
    .option('--bind <address>', 'local address to listen on', '127.0.0.1');
  addPeerOptions(cmd, { disableDirect: true })
    .addHelpText(
      'after',
      '\nExamples:\n  traverse forward dev-box 8080:localhost:80 5432:db.internal:5432 --server http://coord.example:8080 --token "$CLIENT_TOKEN"\n\n' +
        "The agent allows targets with its --allow-target list (default: its own loopback).\nRuns until SIGINT or SIGTERM.",
    )
    .action(async (agent: string, specs: string[], flags: ForwardFlags) => {
      const forwards = specs.map(parseForwardSpec);
      const node = await startPeer(flags, 'client', 'forward');
      let forwarder: Forwarder | undefined;
      exitWhenClosedForGood(node, 'forward', () => void forwarder?.close());
      onShutdown(async () => {
        void forwarder?.close();
        node.close();
        await node.whenClosed; // the router's mapping deleted
      });
      await tunnelTo(node, agent);
      try {
        forwarder = await startForwards(node, { agent, forwards, bind: flags.bind });
      } catch (err) {
        node.close(); // nothing to serve: the command ends here
        if (err instanceof ForwardListenError) {
          throw new CommandFailed(`cannot listen on ${formatEndpoint(err.bind, err.forward.localPort)}: ${err.message}`);
        }
        throw err;
      }
      forwarder.on('connectionFailed', (f, err) => process.stderr.write(`traverse: connection to ${f.target} failed: ${err.message}\n`));
      for (const l of forwarder.bound) {
        process.stdout.write(`forwarding ${formatEndpoint(l.bind, l.port)} -> ${l.forward.target} on ${agent} (path: ${describePath(l.path)})\n`);
      }
      node.on('path', (p, path) => {
        if (p.name === agent) process.stdout.write(`path to ${agent}: ${describePath(path)}\n`);
      });
      // The agent's coordination server (one replica of several) may go while the agent lives on:
      // the path in use is kept, and the agent comes back through another server.
      let lost = false;
      node.on('peerGone', (p, how) => {
        if (p.name !== agent || how !== 'lost' || lost) return;
        lost = true;
        process.stdout.write(`${agent} lost by the coordination server (the path in use is kept)\n`);
      });
      node.on('peer', (p) => {
        if (p.name !== agent || !lost) return;
        lost = false;
        process.stdout.write(`${agent} back\n`);
      });
    });
}
