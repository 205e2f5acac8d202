// `traverse proxy AGENT HOST:PORT`: stdin and stdout as one stream to a target in the workspace,
// for ssh's ProxyCommand.
import type { Command } from 'commander';
import { ProxyError, proxyStream } from '../node/proxy.js';
import { addPeerOptions, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed } from './errors.js';
import { hostPortFlag } from './options.js';
import { onShutdown } from './shutdown.js';
import { summaryOf } from './command-list.js';
import { trace } from '../log/trace.js';

export function registerProxyCommand(program: Command): void {
  const cmd = program
    .command('proxy')
    .description(summaryOf('proxy'))
    .argument('<agent>', "the agent's name on the coordination server")
    .argument('<target>', 'HOST:PORT as seen from the agent, e.g. localhost:22');
  addPeerOptions(cmd, { disableDirect: true, stdinToken: false })
    .addHelpText(
      'after',
      '\nExample:\n  ssh -o ProxyCommand="traverse proxy dev-box localhost:22" user@dev-box\n' +
        '  (with TRAVERSE_SERVER and TRAVERSE_TOKEN set in the environment)\n\nLogs go to stderr; stdout carries only the stream.',
    )
    .action(async (agent: string, target: string, flags: PeerFlags) => {
      hostPortFlag('HOST:PORT', target); // a usage error before connecting
      trace('proxy command starts');
      // ssh waits for the banner: open the stream first, learn endpoints and run netcheck after;
      // the tunnel is asked for as the node joins.
      const node = await startPeer(flags, 'client', 'proxy', { quickStart: true, tunnelTo: agent });
      onShutdown(async () => {
        node.close();
        await node.whenClosed; // the router's mapping deleted
      }, 130);
      let finished = false;
      try {
        const peerKey = await tunnelTo(node, agent);
        try {
          await proxyStream(node, { peerKey, target, input: process.stdin, output: process.stdout });
        } catch (err) {
          if (!(err instanceof ProxyError)) throw err;
          throw new CommandFailed(err.stage === 'open' ? `cannot reach ${target} on ${agent}: ${err.reason}` : `stream to ${target} failed: ${err.reason}`);
        }
        finished = true;
      } finally {
        node.close();
        if (finished) process.exitCode = 0;
      }
    });
}
