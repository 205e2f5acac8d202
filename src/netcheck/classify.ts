// RFC 5780 section 4 classification, as pure functions of what the probes saw.
import type { NatBehaviour } from './report.js';

/**
 * Mapping behaviour (RFC 5780 section 4.3) from the mapped addresses seen by the primary
 * address (test I), the alternate IP with the primary port (test II) and the alternate IP and
 * port (test III). Null means that probe was not answered.
 */
export function classifyMapping(test1: string | null, test2: string | null, test3: string | null): NatBehaviour {
  if (test1 === null || test2 === null) return 'unknown';
  if (test1 === test2) return 'endpoint-independent';
  if (test3 === null) return 'unknown';
  return test2 === test3 ? 'address-dependent' : 'address-and-port-dependent';
}

/**
 * Filtering behaviour (RFC 5780 section 4.4): whether an answer sent from the alternate IP and
 * port (test II) or from the primary IP and alternate port (test III) got through to us, having
 * so far only sent to the primary address. Null means the probe was not made.
 */
export function classifyFiltering(fromOtherIpAndPort: boolean | null, fromOtherPort: boolean | null): NatBehaviour {
  if (fromOtherIpAndPort === null) return 'unknown';
  if (fromOtherIpAndPort) return 'endpoint-independent';
  if (fromOtherPort === null) return 'unknown';
  return fromOtherPort ? 'address-dependent' : 'address-and-port-dependent';
}

/** Whether servers at different IPs (of one family) saw different mapped addresses; null if fewer than two IPs of a family answered. */
export function mappingVariesByDestIP(seen: readonly { serverIp: string; mapped: string }[]): boolean | null {
  // Within one family only: an IPv4 server and an IPv6 one always see different addresses.
  let answer: boolean | null = null;
  for (const v6 of [false, true]) {
    const byIp = new Map<string, string>();
    for (const s of seen) if (s.serverIp.includes(':') === v6 && !byIp.has(s.serverIp)) byIp.set(s.serverIp, s.mapped);
    if (byIp.size >= 2) answer = answer === true || new Set(byIp.values()).size > 1;
  }
  return answer;
}

/**
 * Whether a NAT is "hard": its mapping depends on the destination (address-dependent or
 * address-and-port-dependent, or servers at different IPs saw different ports), so a peer cannot
 * learn from a STUN server the port it will be reached at. Unknown is not hard. Takes a report or
 * the summary peers publish (which folds mappingVariesByDestIP into mapping already).
 */
export function isHardMapping(
  nat: { readonly mapping?: NatBehaviour | undefined; readonly mappingVariesByDestIP?: boolean | null | undefined } | undefined,
): boolean {
  return nat?.mapping === 'address-dependent' || nat?.mapping === 'address-and-port-dependent' || nat?.mappingVariesByDestIP === true;
}
