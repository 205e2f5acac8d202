// For session tests: keys for the two ends of a test stream, as a Noise handshake would give
// them (each end's tx is the other's rx), and in-memory carriers that can die mid-flight.
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { StreamKeys } from '../../src/tunnel/record-cipher.js';

export function streamKeyPair(): { a: StreamKeys; b: StreamKeys } {
  const one = randomBytes(32);
  const two = randomBytes(32);
  return { a: { tx: one, rx: two }, b: { tx: two, rx: one } };
}

/** Two carrier ends; `cut()` makes both silently drop everything from then on, like a dead path. */
export function carrierPair(): { a: Duplex; b: Duplex; cut(): void } {
  let dead = false;
  // eslint-disable-next-line prefer-const
  let b: Duplex;
  const mk = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) {
        // Deliver asynchronously, like a network, so a cut can lose data in flight.
        setImmediate(() => {
          if (!dead) other().push(chunk);
        });
        cb();
      },
      final(cb) {
        setImmediate(() => {
          if (!dead) other().push(null);
        });
        cb();
      },
    });
  const a = mk(() => b);
  b = mk(() => a);
  return { a, b, cut: () => (dead = true) };
}

