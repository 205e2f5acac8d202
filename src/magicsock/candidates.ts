// Candidate endpoints of this node: where a peer might reach our socket. Each source of them is
// here: the machine's interfaces (with the socket's port: IPv4, and global or unique-local IPv6),
// STUN-reflexive addresses (over IPv4 and IPv6), and the addresses peers saw us at. A new source
// (port mapping) is one more field and one more argument to mergeEndpoints.
import type { StunClient, StunTarget } from '../stun/client.js';
import { formatEndpoint } from '../net/endpoint.js';
import { interfaceCandidateAddresses } from '../net/interfaces.js';
import { ipFamily } from '../net/ip.js';
import { familiesOf, type Family } from './dual-stack.js';
import { judgeMapping } from '../portmap/report.js';

/** Addresses peers saw us at, most recent first, kept up to this many (hard NATs show several). */
const MAX_OBSERVED_SELF = 4;

export class Candidates {
  private reflexive: string[] = [];
  private observedSelf: string[] = [];
  /** The port mapping the gateway made for our socket ("ip:port"), or null. */
  private mapped: { address: string; port: number } | null = null;

  constructor(
    /** The addresses to offer with the socket's port; the machine's interfaces by default. */
    private readonly localAddresses: () => readonly string[] = interfaceCandidateAddresses,
  ) {}

  /**
   * Learns our reflexive addresses with one Binding transaction per STUN server (not a full
   * netcheck: this is on the path to the first connection). Servers that do not answer add
   * nothing; the list is replaced, so a mapping that moved is forgotten.
   */
  async learnReflexive(stun: StunClient, servers: readonly StunTarget[], timeoutMs: number): Promise<void> {
    const results = await Promise.all(
      servers.map((s) =>
        stun.binding(s, { timeoutMs, rtoMs: Math.min(250, stun.rtoFor(s)) }).then(
          (r) => formatEndpoint(r.mapped.address, r.mapped.port),
          () => null,
        ),
      ),
    );
    this.reflexive = [...new Set(results.filter((r): r is string => r !== null))];
  }

  /**
   * An address a peer saw our socket at (a pong's source). Returns whether it is new, that is
   * neither among the `published` endpoints nor seen before, and so changes the list.
   */
  observed(endpoint: string, published: readonly string[]): boolean {
    if (this.observedSelf.includes(endpoint) || published.includes(endpoint)) return false;
    this.observedSelf = [endpoint, ...this.observedSelf].slice(0, MAX_OBSERVED_SELF);
    return true;
  }

  /** The address the gateway mapped for our socket (port mapping), or null when there is none. */
  setMapped(mapped: { address: string; port: number } | null): void {
    this.mapped = mapped;
  }

  /**
   * Whether the mapped address can be trusted: not when it is private or differs from what STUN
   * saw (a carrier NAT in front of the router). Null without a mapping or a STUN answer.
   */
  mappedTrust(): { trusted: boolean | null; reason: string | null } {
    if (!this.mapped) return { trusted: null, reason: null };
    // The mapping is an IPv4 address: compare it with what IPv4 STUN servers saw.
    const stunIps = [...new Set(this.reflexive.map((r) => r.slice(0, r.lastIndexOf(':'))))].filter((ip) => ipFamily(ip) === 4);
    return judgeMapping(this.mapped.address, stunIps);
  }

  /**
   * The endpoint list to publish for a socket bound to `port`. A trusted port mapping goes first
   * (a peer anywhere can reach it, whatever its NAT); one that is not trusted is still offered,
   * last, since trying it costs a few probes.
   */
  list(port: number, families: readonly Family[] = [4, 6]): string[] {
    const carried = (a: string): boolean => families.includes(ipFamily(a) as Family);
    const mapped = this.mapped ? formatEndpoint(this.mapped.address, this.mapped.port) : null;
    const trusted = mapped !== null && this.mappedTrust().trusted !== false;
    const merged = mergeEndpoints(this.localAddresses().filter(carried), port, this.reflexive, this.observedSelf);
    if (mapped === null) return merged;
    const rest = merged.filter((e) => e !== mapped);
    return trusted ? [mapped, ...rest].slice(0, 32) : [...rest.slice(0, 31), mapped];
  }

  /** The IP families this machine has candidate addresses in. */
  localFamilies(): Family[] {
    return familiesOf(this.localAddresses());
  }
}

/**
 * The endpoint list to publish, in order of preference: local interface addresses with the
 * socket's port, then STUN-reflexive addresses, then addresses peers saw us at. Deduplicated and
 * capped, since the coordinator accepts at most `max`.
 */
export function mergeEndpoints(
  localAddresses: readonly string[],
  port: number,
  reflexive: readonly string[],
  observed: readonly string[],
  max = 32,
): string[] {
  const all = [...localAddresses.map((a) => formatEndpoint(a, port)), ...reflexive, ...observed];
  return [...new Set(all)].slice(0, max);
}
