// Why a tunnel ended up on the relay, from what both sides know: their own settings and both
// netcheck summaries. Pure, so every sentence is tested. The first reason that applies wins,
// most certain first.
import type { NetcheckSummary } from '../coordination/protocol.js';
import { splitEndpoint } from '../net/endpoint.js';
import { isHardMapping } from '../netcheck/classify.js';
import { ipFamily } from '../net/ip.js';

export interface RelayContext {
  /** This side passed --disable-direct. */
  readonly disabledHere: boolean;
  /** The coordination server runs with --block-direct. */
  readonly blockedByServer: boolean;
  /** Which side is which, for the sentences. */
  readonly hereName: string;
  readonly peerName: string;
  readonly here: NetcheckSummary | undefined;
  readonly peer: NetcheckSummary | undefined;
  /** The peer published no endpoint at all (it runs relay-only, or STUN found nothing). */
  readonly peerHasEndpoints: boolean;
  /** The endpoints each side published, to tell an IPv6-only side from an IPv4-only one. */
  readonly hereEndpoints?: readonly string[];
  readonly peerEndpoints?: readonly string[];
}

/** [here's only family, peer's only family] when each side has endpoints of one family and they differ. */
function familyMismatch(here: readonly string[] | undefined, peer: readonly string[] | undefined): [4 | 6, 4 | 6] | null {
  const only = (eps: readonly string[] | undefined): 4 | 6 | null => {
    const fams = new Set((eps ?? []).map((e) => ipFamily(splitEndpoint(e)?.address ?? '')).filter((f) => f !== 0));
    return fams.size === 1 ? ([...fams][0] as 4 | 6) : null;
  };
  const h = only(here);
  const p = only(peer);
  return h !== null && p !== null && h !== p ? [h, p] : null;
}

const ipOf = (endpoint: string | null | undefined): string | null => (endpoint ? (splitEndpoint(endpoint)?.address ?? null) : null);

export function whyRelayed(c: RelayContext): string {
  if (c.disabledHere) return 'direct connections are disabled on this side (--disable-direct)';
  if (c.blockedByServer) return 'the coordination server blocks direct connections (--block-direct)';
  if (c.here?.udp === false) return `UDP is blocked on ${c.hereName}'s network: allow outbound UDP for a direct path`;
  if (c.peer?.udp === false) return `UDP is blocked on ${c.peerName}'s network: allow outbound UDP there for a direct path`;
  if (!c.peerHasEndpoints) return `${c.peerName} published no endpoints (it runs relay-only, or found no address)`;
  const families = familyMismatch(c.hereEndpoints, c.peerEndpoints);
  if (families) {
    const [hereOnly, peerOnly] = families;
    return (
      `${c.hereName} has only IPv${hereOnly} addresses and ${c.peerName} only IPv${peerOnly} ones: with no address family in common ` +
      `there is no direct path; give ${c.peerName} IPv${hereOnly} or ${c.hereName} IPv${peerOnly} for one`
    );
  }
  const hereIp = ipOf(c.here?.globalV4);
  const peerIp = ipOf(c.peer?.globalV4);
  if (hereIp && hereIp === peerIp && (c.here?.hairpinning === false || c.peer?.hairpinning === false)) {
    return (
      `both sides are behind the same NAT (${hereIp}), which does not hairpin, and no STUN server revealed their inside addresses: ` +
      'run an internal STUN server on the inside network and publish it to peers (traverse server --stun), or enable hairpinning on the NAT'
    );
  }
  if (isHardMapping(c.here) && isHardMapping(c.peer)) {
    return 'both NATs are hard (endpoint-dependent mapping): neither side can predict the port the other will use; a port forward on either side would allow a direct path';
  }
  const hardSide = isHardMapping(c.here) ? c.hereName : isHardMapping(c.peer) ? c.peerName : null;
  if (hardSide) {
    const other = hardSide === c.hereName ? c.peer : c.here;
    const otherName = hardSide === c.hereName ? c.peerName : c.hereName;
    if (other?.filtering === 'address-and-port-dependent') {
      return `${hardSide}'s NAT is hard (endpoint-dependent mapping) and ${otherName}'s NAT filters by address and port, so ${hardSide}'s new ports are never let in; a port forward or an easier NAT on either side would allow a direct path`;
    }
  }
  return 'no direct path answered: a firewall between the peers may drop UDP';
}
