// A TCP echo target on loopback, and a round trip through a stream to it: what the tests of
// carriers and lanes send their bytes to.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { readAll } from './read-all.js';

export interface EchoTarget {
  /** "127.0.0.1:port", as a stream request names its target. */
  readonly target: string;
  readonly server: Server;
}

/** Echoes every connection's bytes back; half-close is passed on (the echo ends when its peer does). */
export async function startEcho(): Promise<EchoTarget> {
  const server = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { target: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Writes `data`, ends, and reads everything the echo target sends back. */
export function echoThrough(stream: Duplex, data: Buffer): Promise<Buffer> {
  const back = readAll(stream);
  stream.end(data);
  return back;
}
