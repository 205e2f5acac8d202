// One stream to a target behind an agent, joined to a local readable/writable pair (what
// `traverse proxy` runs with stdin and stdout, for ssh's ProxyCommand).
import { Duplex, type Readable, type Writable } from 'node:stream';
import { join } from '../tunnel/services.js';
import type { PeerNode } from './peer-node.js';
import { startedUp } from '../log/trace.js';

export interface ProxyOptions {
  /** The agent's node key (from PeerNode.openTunnel). */
  readonly peerKey: string;
  /** "host:port" as the agent sees it. */
  readonly target: string;
  /** What to send (e.g. process.stdin). */
  readonly input: Readable;
  /** Where what comes back goes (e.g. process.stdout). */
  readonly output: Writable;
}

/** Why a proxy ended badly: the stream could not be opened, or it failed while carrying. */
export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly stage: 'open' | 'stream',
    readonly target: string,
    /** The underlying reason, e.g. the agent's refusal. */
    readonly reason: string,
  ) {
    super(stage === 'open' ? `cannot open a stream to ${target}: ${reason}` : `stream to ${target} failed: ${reason}`);
  }
}

/**
 * Opens a stream to the target and carries bytes both ways until it closes. Resolves on a
 * normal end, including the reader of `output` going away (EPIPE); rejects with ProxyError.
 */
export async function proxyStream(node: PeerNode, options: ProxyOptions): Promise<void> {
  let stream: Duplex;
  try {
    stream = await node.streams.open(options.peerKey, { kind: 'tcp', target: options.target });
  } catch (err) {
    throw new ProxyError('open', options.target, (err as Error).message);
  }
  stream.once('data', () => startedUp('first byte from the target'));
  const local = Duplex.from({ readable: options.input, writable: options.output });
  await new Promise<void>((resolve, reject) => {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // Whoever reads our output went away (ssh exited, `| head`): a normal end for us.
      if (err.code === 'EPIPE') resolve();
      else reject(new ProxyError('stream', options.target, err.message));
    });
    stream.on('close', () => resolve());
    join(local, stream);
  });
}
