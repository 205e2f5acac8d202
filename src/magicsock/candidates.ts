// Candidate endpoints of this node: where a peer might reach our socket.
import { networkInterfaces } from 'node:os';
import { formatEndpoint } from '../net/endpoint.js';

/** IPv4 addresses of this machine's interfaces, loopback excluded. */
export function interfaceIPv4Addresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) out.push(i.address);
  }
  return out;
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
