// This machine's interface addresses, read in one place: candidates offer them to peers, netcheck
// compares them with the public address, and the node watches them for network changes.
import { networkInterfaces } from 'node:os';
import { isCandidateIPv6 } from './ip.js';

export interface InterfaceFilter {
  /** Only this family; both by default. */
  readonly family?: 'IPv4' | 'IPv6';
  /** Leave out loopback and other internal interfaces (default false: all of them). */
  readonly externalOnly?: boolean;
}

/** The addresses of this machine's interfaces, in the order the OS lists them. */
export function interfaceAddresses(filter: InterfaceFilter = {}): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      if (filter.family !== undefined && i.family !== filter.family) continue;
      if (filter.externalOnly && i.internal) continue;
      out.push(i.address);
    }
  }
  return out;
}

/** IPv4 addresses of this machine's interfaces, loopback excluded: the ones a peer might reach. */
export function interfaceIPv4Addresses(): string[] {
  return interfaceAddresses({ family: 'IPv4', externalOnly: true });
}

/**
 * The interface addresses a peer might reach this machine at: IPv4 (loopback excluded), then
 * IPv6 global unicast and unique-local addresses. Link-local IPv6 is left out (it needs a zone
 * that means nothing on the peer's side), and so are loopback and IPv4-mapped addresses.
 */
export function interfaceCandidateAddresses(): string[] {
  return [...interfaceIPv4Addresses(), ...interfaceAddresses({ family: 'IPv6', externalOnly: true }).filter(isCandidateIPv6)];
}

/** Whether this machine has IPv6 at all (even ::1): where it is turned off, "::" cannot be bound. */
export function hasIPv6(): boolean {
  return interfaceAddresses({ family: 'IPv6' }).length > 0;
}

/** Every interface address, sorted, as one string: it changes when an address comes or goes. */
export function interfaceFingerprint(): string {
  return interfaceAddresses().sort().join(',');
}
