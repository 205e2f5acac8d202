// Turning what the user typed into an address to send to.
import { lookup } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { parseHostPort, type Endpoint } from '../net/endpoint.js';
import { CommandFailed } from './errors.js';

/** "host[:port]" to a literal endpoint, resolving a host name with the system resolver. */
export async function resolveEndpoint(text: string, defaultPort: number): Promise<Endpoint> {
  const hp = parseHostPort(text, defaultPort);
  const fam = isIP(hp.host);
  if (fam !== 0) return { address: hp.host, port: hp.port, family: fam as 4 | 6 };
  try {
    const r = await lookup(hp.host);
    return { address: r.address, port: hp.port, family: r.family === 6 ? 6 : 4 };
  } catch {
    throw new CommandFailed(`cannot resolve "${hp.host}": check the name, or give an IP address`);
  }
}

/**
 * The source address the kernel would use towards `target`: a connected UDP socket sends
 * nothing but is given a route and a source address.
 */
export async function routeSourceAddress(target: Endpoint): Promise<string | null> {
  const s = createSocket(target.family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(target.port, target.address, () => resolve());
    });
    return s.address().address;
  } catch {
    return null;
  } finally {
    s.close();
  }
}
