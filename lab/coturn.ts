// coturn as the independent judge of the lab: `turnserver` in RFC 5780 mode on a STUN host's
// two addresses, and `turnutils_natdiscovery` on a LAN host, parsed into RFC 4787 terms.
import type { Lab, LabProcess } from './lab.js';
import type { MappingBehaviour } from './nat.js';
import { waitForUdpListeners } from './wait-listening.js';

export const STUN_PORT = 3478;

/**
 * Starts coturn STUN-only on the host's first two addresses (primary and RFC 5780 alternate;
 * coturn takes port+1 as the alternate port). Resolves once all four sockets are bound.
 */
export async function startCoturn(lab: Lab, host: string): Promise<LabProcess> {
  const n = lab.node(host);
  const [a, b] = n.addresses;
  if (a === undefined || b === undefined) throw new Error(`STUN host "${host}" needs two addresses for RFC 5780`);
  // -n: no config file; --pidfile per instance, several labs may run coturn at once.
  const child = lab.spawn(host, 'turnserver', [
    '-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls',
    '-L', a, '-L', b, '--listening-port', String(STUN_PORT),
    '--log-file', 'stdout', '--simple-log', '--pidfile', `/tmp/${n.ns}-turnserver.pid`,
  ]);
  // coturn logs nothing when its listeners open: wait for the sockets it must have bound,
  // primary and alternate address, each on port and port+1.
  const want = [a, b].flatMap((ip) => [`${ip}:${STUN_PORT}`, `${ip}:${STUN_PORT + 1}`]);
  await waitForUdpListeners(lab, host, child, want, 'turnserver', 5000);
  return child;
}

export interface NatDiscovery {
  /** Undefined when coturn did not get an answer (UDP blocked, or the test timed out). */
  readonly mapping: MappingBehaviour | undefined;
  readonly filtering: MappingBehaviour | undefined;
  /** The server-reflexive addresses seen, in order ("203.0.113.2:40000"). */
  readonly reflexive: readonly string[];
  /** The local socket addresses, paired with `reflexive` ("0.0.0.0:40000"). */
  readonly local: readonly string[];
  /** Only with `hairpin: true`: whether a hairpinned request came back. */
  readonly hairpinning: boolean | undefined;
  readonly output: string;
}

const BEHAVIOUR: Readonly<Record<string, MappingBehaviour>> = {
  'Endpoint Independent': 'endpoint-independent',
  'Address Dependent': 'address-dependent',
  'Address and Port Dependent': 'address-and-port-dependent',
};

function behaviour(output: string, what: 'Mapping' | 'Filtering'): MappingBehaviour | undefined {
  const m = new RegExp(`NAT with (.+?) ${what}!`).exec(output);
  return m?.[1] === undefined ? undefined : BEHAVIOUR[m[1]];
}

/** Runs coturn's NAT behaviour discovery from `host` against `server` (RFC 5780 mode). */
export async function natDiscovery(
  lab: Lab,
  host: string,
  server: string,
  tests: { mapping?: boolean; filtering?: boolean; hairpin?: boolean } = { mapping: true, filtering: true },
): Promise<NatDiscovery> {
  const flags = [...(tests.mapping ? ['-m'] : []), ...(tests.filtering ? ['-f'] : []), ...(tests.hairpin ? ['-H'] : [])];
  const r = await lab.exec(host, 'turnutils_natdiscovery', [...flags, '-p', String(STUN_PORT), server], { timeoutMs: 30_000 });
  const output = r.stdout + r.stderr;
  return {
    mapping: behaviour(output, 'Mapping'),
    filtering: behaviour(output, 'Filtering'),
    reflexive: [...output.matchAll(/UDP reflexive addr: (\S+)/g)].map((m) => m[1] ?? ''),
    local: [...output.matchAll(/Local addr: : (\S+)/g)].map((m) => m[1] ?? ''),
    hairpinning: tests.hairpin ? /successful hairpinning/.test(output) : undefined,
    output,
  };
}
