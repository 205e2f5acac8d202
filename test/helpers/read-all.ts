// Everything a stream sends until it ends, for tests of the stream API.
import type { Duplex } from 'node:stream';

/**
 * Not with `for await`: Node's iterator destroys the stream at the end, which would take our
 * writable side with it.
 */
export function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}
