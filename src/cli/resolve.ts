// Turning what the user typed into an address to send to.
import { createSocket } from 'node:dgram';
import type { Endpoint } from '../net/endpoint.js';
import { ResolveError, resolveEndpoint as resolveNet } from '../net/resolve.js';
import { CommandFailed } from './errors.js';

/** "host[:port]" to a literal endpoint; a name that does not resolve fails the command. */
export async function resolveEndpoint(text: string, defaultPort: number): Promise<Endpoint> {
  try {
    return await resolveNet(text, defaultPort);
  } catch (err) {
    if (err instanceof ResolveError) throw new CommandFailed(err.message);
    throw err;
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
