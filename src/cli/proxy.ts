// `traverse proxy AGENT HOST:PORT`: stdin and stdout as one stream to a target in the workspace,
// for ssh's ProxyCommand.
import type { Command } from 'commander';
import { Duplex } from 'node:stream';
import { join } from '../tunnel/services.js';
import { addPeerOptions, startPeer, tunnelTo, type PeerFlags } from './peer-options.js';
import { CommandFailed } from './errors.js';
import { parseHostPort } from '../net/endpoint.js';
import { onShutdown } from './shutdown.js';

export function registerProxyCommand(program: Command): void {
  const cmd = program
    .command('proxy')
    .description('connect stdin/stdout to HOST:PORT inside the workspace (for ssh -o ProxyCommand)')
    .argument('<agent>', "the agent's name on the coordination server")
    .argument('<target>', 'HOST:PORT as seen from the agent, e.g. localhost:22');
  addPeerOptions(cmd, { disableDirect: true })
    .addHelpText(
      'after',
      '\nExample:\n  ssh -o ProxyCommand="npx traverse proxy dev-box localhost:22" user@dev-box\n' +
        '  (with TRAVERSE_SERVER and TRAVERSE_TOKEN set in the environment)\n\nLogs go to stderr; stdout carries only the stream.',
    )
    .action(async (agent: string, target: string, flags: PeerFlags) => {
      parseHostPort(target); // a usage error before connecting
      const node = await startPeer(flags, 'client', 'proxy');
      onShutdown(() => node.close(), 1);
      let finished = false;
      try {
        const peerKey = await tunnelTo(node, agent);
        let stream;
        try {
          stream = await node.streams.open(peerKey, { kind: 'tcp', target });
        } catch (err) {
          throw new CommandFailed(`cannot reach ${target} on ${agent}: ${(err as Error).message}`);
        }
        const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
        await new Promise<void>((resolve, reject) => {
          stream.on('error', (err: NodeJS.ErrnoException) => {
            // Whoever reads our stdout went away (ssh exited, `| head`): a normal end for us.
            if (err.code === 'EPIPE') resolve();
            else reject(new CommandFailed(`stream to ${target} failed: ${err.message}`));
          });
          stream.on('close', () => resolve());
          join(stdio, stream);
        });
        finished = true;
      } finally {
        node.close();
        if (finished) process.exitCode = 0;
      }
    });
}
