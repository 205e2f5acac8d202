// An in-memory relay between MagicSock engines in one process: delivers a datagram to the engine
// holding the destination key on a later turn, and keeps a log (and, if asked, the frames).
import { MagicSock } from '../../src/magicsock/magicsock.js';
import type { RelayTransport } from '../../src/magicsock/relay-shim.js';
import { NodeKey } from '../../src/identity/node-key.js';

export class MemoryRelay {
  private readonly nodes = new Map<string, MagicSock>();
  readonly log: { from: string; to: string; bytes: number }[] = [];
  /** Every payload relayed, when keepFrames is set (to look for plaintext). */
  readonly frames: Buffer[] = [];
  keepFrames = false;

  transportFor(fromKey: string): RelayTransport {
    return {
      send: (to, payload) => {
        const dest = this.nodes.get(to);
        if (this.log.length < 100_000) this.log.push({ from: fromKey, to, bytes: payload.length });
        if (!dest) return false;
        const copy = Buffer.from(payload);
        if (this.keepFrames) this.frames.push(copy);
        setImmediate(() => dest.handleRelay(fromKey, copy));
        return true;
      },
    };
  }

  register(key: string, ms: MagicSock): void {
    this.nodes.set(key, ms);
  }
}

/**
 * A MagicSock on 127.0.0.1, registered with the relay, whose only candidate is loopback, so
 * nothing it sends leaves the machine.
 */
export async function openLoopbackMagicSock(relay: MemoryRelay, directAllowed?: boolean): Promise<{ key: NodeKey; ms: MagicSock }> {
  const key = NodeKey.generate();
  const ms = await MagicSock.open({
    key,
    relay: relay.transportFor(key.publicHex),
    bindAddress: '127.0.0.1',
    localAddresses: () => ['127.0.0.1'],
    ...(directAllowed !== undefined ? { directAllowed } : {}),
  });
  relay.register(key.publicHex, ms);
  return { key, ms };
}
