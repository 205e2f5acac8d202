// Peers by a name: an identity's nodes, the clients with a tunnel to an agent. Nearly every name
// has one peer (one agent process, one client node with a tunnel to it), and a replica indexes
// tens of thousands of them (its own and every other replica's mirrored nodes): a lone peer is
// kept as it is, and a Set is made only for a name that has several.
import type { Peer } from './peer.js';

const NONE: readonly Peer[] = Object.freeze([]);

export class PeerIndex {
  private readonly byName = new Map<string, Peer | Set<Peer>>();
  /** Peers under every name, kept as they come and go: /healthz reads it, and must not walk them all. */
  private total = 0;

  /** The peers under `name` (a snapshot only when the caller copies it). */
  get(name: string): Iterable<Peer> {
    const v = this.byName.get(name);
    if (v === undefined) return NONE;
    return v instanceof Set ? v : [v];
  }

  count(name: string): number {
    const v = this.byName.get(name);
    return v === undefined ? 0 : v instanceof Set ? v.size : 1;
  }

  /** One peer under `name` (the oldest), if any. */
  first(name: string): Peer | undefined {
    const v = this.byName.get(name);
    return v instanceof Set ? v.values().next().value : v;
  }

  add(name: string, peer: Peer): void {
    const v = this.byName.get(name);
    if (v === peer || (v instanceof Set && v.has(peer))) return;
    if (v === undefined) this.byName.set(name, peer);
    else if (v instanceof Set) v.add(peer);
    else this.byName.set(name, new Set([v, peer]));
    this.total++;
  }

  /** Removes `peer` from under `name`; whether it was there. */
  delete(name: string, peer: Peer): boolean {
    const v = this.byName.get(name);
    if (v === peer) this.byName.delete(name);
    else if (!(v instanceof Set) || !v.delete(peer)) return false;
    else if (v.size === 1) this.byName.set(name, v.values().next().value!);
    this.total--;
    return true;
  }

  /** Every peer, under every name. */
  *all(): IterableIterator<Peer> {
    for (const v of this.byName.values()) {
      if (v instanceof Set) yield* v;
      else yield v;
    }
  }

  /** How many peers in all. */
  get size(): number {
    return this.total;
  }
}
