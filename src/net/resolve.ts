// Names to addresses, for the few places a user or an operator may give a host name.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseHostPort, type Endpoint } from './endpoint.js';

export class ResolveError extends Error {
  override readonly name = 'ResolveError';
}

/** "host[:port]" to a literal endpoint, resolving a host name with the system resolver. */
export async function resolveEndpoint(text: string, defaultPort: number): Promise<Endpoint> {
  const hp = parseHostPort(text, defaultPort);
  const fam = isIP(hp.host);
  if (fam !== 0) return { address: hp.host, port: hp.port, family: fam as 4 | 6 };
  try {
    const r = await lookup(hp.host);
    return { address: r.address, port: hp.port, family: r.family === 6 ? 6 : 4 };
  } catch {
    throw new ResolveError(`cannot resolve "${hp.host}": check the name, or give an IP address`);
  }
}

/**
 * "host[:port]" to one literal endpoint per IP family the name has (IPv4 first, then IPv6), so a
 * STUN server named once is probed over both families. A literal is itself.
 */
export async function resolveEndpointFamilies(text: string, defaultPort: number): Promise<Endpoint[]> {
  const hp = parseHostPort(text, defaultPort);
  const fam = isIP(hp.host);
  if (fam !== 0) return [{ address: hp.host, port: hp.port, family: fam as 4 | 6 }];
  let all: { address: string; family: number }[];
  try {
    all = await lookup(hp.host, { all: true });
  } catch {
    throw new ResolveError(`cannot resolve "${hp.host}": check the name, or give an IP address`);
  }
  const out: Endpoint[] = [];
  for (const f of [4, 6] as const) {
    const a = all.find((x) => x.family === f);
    if (a) out.push({ address: a.address, port: hp.port, family: f });
  }
  if (out.length === 0) throw new ResolveError(`"${hp.host}" has no IPv4 or IPv6 address`);
  return out;
}
