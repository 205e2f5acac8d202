// IPv4 and IPv6 on the node's one socket. udx-native binds an AF_INET6 socket with IPV6_V6ONLY
// off when asked for "::" (its ipv6Only option left false): IPv4 peers and STUN servers are then
// reached through the same socket and port, and libudx hands IPv4 sources up unmapped
// ("192.0.2.1", family 4, not "::ffff:192.0.2.1"), so addresses look the same as on an IPv4
// socket. One socket, not one per family, because the mapping STUN learns, the port peers punch
// and the UDX streams all belong to one socket (DESIGN.md, "One socket per node").
import type UDX from 'udx-native';
import type { UDXSocket } from 'udx-native';
import type { StunTarget } from '../stun/client.js';
import { ipFamily } from '../net/ip.js';

export type Family = 4 | 6;

/**
 * Binds the node's socket: to `bindAddress` when given, else dual-stack on "::", falling back to
 * 0.0.0.0 where the kernel has IPv6 turned off.
 */
export function bindNodeSocket(udx: UDX, port: number, bindAddress?: string): UDXSocket {
  const attempt = (address: string): UDXSocket => {
    const socket = udx.createSocket({ ipv6Only: false });
    try {
      socket.bind(port, address);
      return socket;
    } catch (err) {
      void socket.close().catch(() => undefined);
      throw err;
    }
  };
  try {
    if (bindAddress !== undefined) return attempt(bindAddress);
    try {
      return attempt('::');
    } catch {
      return attempt('0.0.0.0');
    }
  } catch (err) {
    throw new Error(`cannot bind UDP port ${port}: ${(err as Error).message}`);
  }
}

/**
 * The families a socket bound to `host` carries: both on "::" (dual-stack), IPv4 only on an IPv4
 * address, IPv6 only on a specific IPv6 address (it cannot receive IPv4).
 */
export function socketFamilies(host: string): Family[] {
  if (host === '::') return [4, 6];
  return ipFamily(host) === 6 ? [6] : [4];
}

/** The families of some addresses or endpoints' hosts, in order 4, 6. */
export function familiesOf(addresses: readonly string[]): Family[] {
  const seen = new Set(addresses.map((a) => ipFamily(a)));
  return ([4, 6] as const).filter((f) => seen.has(f));
}

/**
 * The STUN servers worth asking from this socket: those of a family the socket carries, and,
 * unless the server is on loopback, of a family this machine has an address in (`local`: the
 * families of its candidate addresses). An IPv6-only host asking an IPv4 server would only wait
 * out the timeout before its endpoints could be published.
 */
export function reachableStunServers(servers: readonly StunTarget[], socket: readonly Family[], local: readonly Family[]): StunTarget[] {
  return servers.filter((s) => {
    const f = ipFamily(s.address);
    if (f === 0 || !socket.includes(f)) return false;
    return isLoopback(s.address) || local.includes(f);
  });
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}
