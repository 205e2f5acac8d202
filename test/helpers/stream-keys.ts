// Keys for the two ends of a test stream, as a Noise handshake would give them: each end's tx is
// the other's rx.
import { randomBytes } from 'node:crypto';
import type { StreamKeys } from '../../src/tunnel/record-cipher.js';

export function streamKeyPair(): { a: StreamKeys; b: StreamKeys } {
  const one = randomBytes(32);
  const two = randomBytes(32);
  return { a: { tx: one, rx: two }, b: { tx: two, rx: one } };
}
