// What port mapping found, as netcheck reports it, and whether a mapped address can be trusted.
import type { PortMapProtocol, ProtocolStatus } from './client.js';
import { isPrivateAddress } from '../net/ip.js';

export interface PortMappingReport {
  /** The default gateway asked, or null when there is none (or port mapping is off). */
  readonly gateway: string | null;
  /** Each protocol: available (with the external address it told, if any), or why not. */
  readonly pcp: ProtocolStatus;
  readonly natpmp: ProtocolStatus;
  readonly upnp: ProtocolStatus;
  /** The mapping made, as "ip:port" with the protocol that made it; null if none. */
  readonly mapping: { readonly protocol: PortMapProtocol; readonly external: string; readonly lifetimeS: number } | null;
  /**
   * Whether peers can use the mapping: false when its external address is private or differs
   * from the public address STUN saw (a carrier NAT in front of the router). Null without a
   * mapping, or when STUN saw nothing to compare with.
   */
  readonly trusted: boolean | null;
  /** Why it is not trusted; null otherwise. */
  readonly untrustedReason: string | null;
}

/**
 * A mapping's external address against what STUN saw. Private (RFC 1918, 100.64/10): a NAT in
 * front of the router. Different from every STUN-seen address: the same, seen from outside.
 */
export function judgeMapping(externalAddress: string, stunAddresses: readonly string[]): { trusted: boolean | null; reason: string | null } {
  if (isPrivateAddress(externalAddress)) {
    return { trusted: false, reason: `the router's external address ${externalAddress} is private: another NAT (a carrier's) sits in front of it` };
  }
  if (stunAddresses.length === 0) return { trusted: null, reason: null };
  if (!stunAddresses.includes(externalAddress)) {
    return { trusted: false, reason: `the router's external address ${externalAddress} differs from the address STUN saw (${stunAddresses.join(', ')}): another NAT sits in front of it` };
  }
  return { trusted: true, reason: null };
}

export const PORT_MAPPING_OFF: ProtocolStatus = { available: false, reason: 'port mapping is turned off' };
