// STUN servers for lab tests: coturn (the independent judge) or Traverse's own, each in RFC 5780
// mode on a host's two addresses. They use different ports, so both can run on one host.
import type { Lab, LabProcess } from './lab.js';
import { startCoturn, STUN_PORT } from './coturn.js';
import { BIN } from '../test/helpers/cli.js';
import { waitForUdpListeners } from './wait-listening.js';
import { formatEndpoint } from '../src/net/endpoint.js';

export const TRAVERSE_STUN_PORT = 3480;

export interface LabStunServer {
  readonly name: 'coturn' | 'traverse';
  readonly port: number;
  start(lab: Lab, host: string): Promise<LabProcess>;
}

/**
 * Traverse's `stun-server` on the host's two addresses (its two IPv6 ones for `family` 6: one
 * process per family, as RFC 5780 pairs addresses of one family); resolves once its four sockets
 * are bound.
 */
export async function startTraverseStun(lab: Lab, host: string, port = TRAVERSE_STUN_PORT, family: 4 | 6 = 4): Promise<LabProcess> {
  const n = lab.node(host);
  const [a, b] = family === 6 ? n.addresses6 : n.addresses;
  if (a === undefined || b === undefined) throw new Error(`STUN host "${host}" needs two addresses for RFC 5780`);
  const child = lab.spawn(host, process.execPath, [
    BIN, 'stun-server', '--listen', formatEndpoint(a, port), '--alt-address', b, '--rate-limit', '0',
  ]);
  await waitForUdpListeners(lab, host, child, [a, b].flatMap((ip) => [formatEndpoint(ip, port), formatEndpoint(ip, port + 1)]), 'traverse stun-server', 10_000);
  return child;
}

export const LAB_STUN_SERVERS: readonly LabStunServer[] = [
  { name: 'coturn', port: STUN_PORT, start: startCoturn },
  { name: 'traverse', port: TRAVERSE_STUN_PORT, start: (lab, host) => startTraverseStun(lab, host) },
];
