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
