// An in-memory relay between MagicSock engines in one process: delivers a datagram to the engine
// holding the destination key on a later turn, and keeps a log (and, if asked, the frames).
import type { MagicSock, RelayTransport } from '../../src/magicsock/magicsock.js';

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
