// Port prediction for a hard NAT facing an easy one ("birthday" punching, as Holepunch's hyperdht
// does it). The hard side opens many sockets, each sending to the easy side's public endpoint:
// each opens a mapping on the hard NAT, at a port nobody can predict, that lets the easy side in.
// The easy side then sends to random ports of the hard side's public IP. With 256 mappings among
// ~64,500 ports, 2,000 probes find one with a probability of 1 - (1 - 256/64512)^2000 > 99.9%.
// The first probe that lands is answered from the socket it reached, and that socket becomes the
// hard side's path. Bounded: 256 sockets for 20 s, 2,000 probes over 2 s, once a minute per peer.

/** Sockets the hard side opens. */
export const BIRTHDAY_SOCKETS = 256;
/** When the hard side's sockets send towards the easy side (ms after the start). */
export const BIRTHDAY_SEND_AT_MS = [0, 500, 1000, 2000, 4000] as const;
/** How long the hard side keeps sockets that did not win. */
export const BIRTHDAY_LIFETIME_MS = 20_000;
/** Probes the easy side sends, and how they are spread. */
export const BIRTHDAY_PROBES = 2000;
export const BIRTHDAY_BATCH = 100;
export const BIRTHDAY_BATCH_INTERVAL_MS = 100;
/** At most one attempt per peer this often, on either side. */
export const BIRTHDAY_MIN_INTERVAL_MS = 60_000;

/** `count` distinct random ports from 1024 to 65535 (the range NATs allocate from). */
export function randomPorts(count: number, random: () => number = Math.random): number[] {
  const seen = new Set<number>();
  const n = Math.min(count, 65535 - 1024 + 1);
  while (seen.size < n) seen.add(1024 + Math.floor(random() * (65535 - 1024 + 1)));
  return [...seen];
}
