// Where a node may aim disco at all: only at addresses that are plausible for that peer. An
// allowed client controls what it publishes and what it says in disco messages, so none of that
// alone may name a destination; what the coordinator vouches for does:
//
//   - the endpoints the coordinator published for the peer's key;
//   - addresses an authentic sealed packet of that peer arrived from (observed);
//   - any port of the IP the coordinator saw the peer's connection come from (the vouched IP):
//     a call-me-maybe endpoint there is usable, and port prediction aims only there.
//
// Never an unspecified, broadcast or multicast address, nor port 0, whoever names it. Pure.
import { splitEndpoint } from '../net/endpoint.js';
import { ipFamily, unmapIPv4 } from '../net/ip.js';
import { isUnicastAddress } from '../net/unicast.js';

/** A set of endpoints, as far as aiming needs one (a Set, or the keys of a Map). */
export interface EndpointSet {
  has(endpoint: string): boolean;
}

/** What the coordinator and the wire vouch for about one peer key. */
export interface PeerAim {
  /** Endpoints the coordinator published for the key. */
  readonly published: EndpointSet;
  /** Endpoints an authentic packet of the key arrived from. */
  readonly observed: EndpointSet;
  /** The IP the coordinator saw the key's connection come from (normalized), or null. */
  readonly vouchedIp: string | null;
}

/** "::ffff:192.0.2.1" is 192.0.2.1; IPv6 text is lowercased. Null for anything not an IP. */
export function normalizeIp(ip: string | null | undefined): string | null {
  if (!ip) return null;
  let a = ip.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  a = unmapIPv4(a);
  return ipFamily(a) === 0 ? null : a;
}

/** Whether a packet may be sent to this address and port at all (by anyone's say-so). */
export function isSendableAddress(address: string, port: number): boolean {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return false;
  const a = normalizeIp(address);
  return a !== null && isUnicastAddress(a);
}

/** Whether `endpoint` is a plausible destination for the peer described by `aim`. */
export function mayAim(endpoint: string, aim: PeerAim): boolean {
  const ep = splitEndpoint(endpoint);
  if (!ep || !isSendableAddress(ep.address, ep.port)) return false;
  if (aim.published.has(endpoint) || aim.observed.has(endpoint)) return true;
  return aim.vouchedIp !== null && normalizeIp(ep.address) === aim.vouchedIp;
}

/** The endpoints of a call-me-maybe worth using: published ones, or ones on the vouched IP. */
export function aimCallMeMaybe(endpoints: readonly string[], aim: Omit<PeerAim, 'observed'>): string[] {
  const none: EndpointSet = { has: () => false };
  return endpoints.filter((e) => mayAim(e, { ...aim, observed: none }));
}

/** Whether a birthday naming `ip` may be acted on: only for the IP the coordinator vouched for. */
export function aimBirthday(ip: string, vouchedIp: string | null): boolean {
  const a = normalizeIp(ip);
  return a !== null && vouchedIp !== null && a === vouchedIp && isUnicastAddress(a);
}

/** The hard side's port-prediction targets: only endpoints on the peer's vouched IP. */
export function aimPredictionTargets(targets: readonly string[], vouchedIp: string | null): string[] {
  if (vouchedIp === null) return [];
  return targets.filter((t) => {
    const ep = splitEndpoint(t);
    return ep !== null && isSendableAddress(ep.address, ep.port) && normalizeIp(ep.address) === vouchedIp;
  });
}
