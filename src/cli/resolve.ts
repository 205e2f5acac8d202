// Turning what the user typed into an address to send to.
import { createSocket } from 'node:dgram';
import type { Endpoint } from '../net/endpoint.js';
import { ResolveError, resolveEndpoint as resolveNet, resolveEndpointFamilies as resolveNetFamilies } from '../net/resolve.js';
import { CommandFailed } from './errors.js';

/** A name that does not resolve fails the command with the resolver's message. */
async function orFail<T>(resolving: Promise<T>): Promise<T> {
  try {
    return await resolving;
  } catch (err) {
    if (err instanceof ResolveError) throw new CommandFailed(err.message);
    throw err;
  }
}

/** "host[:port]" to a literal endpoint. */
export function resolveEndpoint(text: string, defaultPort: number): Promise<Endpoint> {
  return orFail(resolveNet(text, defaultPort));
}

/** "host[:port]" to one literal endpoint per IP family the name has. */
export function resolveEndpointFamilies(text: string, defaultPort: number): Promise<Endpoint[]> {
  return orFail(resolveNetFamilies(text, defaultPort));
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
