// A tunnel stream as a genuine Node Duplex, for apps. The encrypted stream is a streamx Duplex
// (typed as Node's for the methods both have); an app expects all of Node's API (setEncoding,
// readableEnded, stream.pipeline, for await). This bridges the two, keeping back-pressure, the
// half-close (end() sends a FIN, the peer's FIN ends our readable) and resets.
import { Duplex } from 'node:stream';

/**
 * Wraps an encrypted stream. Destroying the wrapper before both sides ended resets the peer's
 * side at once (a destroy without an error would leave the stream there waiting to resume until
 * its idle timeout); after a clean end both ways the stream is left to close by itself, so bytes
 * still being acknowledged are not lost.
 */
export function appDuplex(secure: Duplex): Duplex {
  let readEnded = false;
  let writeEnded = false;
  let secureClosed = false;
  /** A write waiting for the encrypted stream to drain; told if that stream closes first. */
  let waiting: ((err?: Error) => void) | null = null;
  const dup = new Duplex({
    allowHalfOpen: true,
    read() {
      secure.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (secureClosed) return callback(new Error('the stream is closed'));
      if (secure.write(chunk)) return callback();
      waiting = callback;
      secure.once('drain', () => {
        if (waiting !== callback) return; // already failed by the close
        waiting = null;
        callback();
      });
    },
    final(callback) {
      writeEnded = true;
      secure.end();
      callback();
    },
    destroy(err, callback) {
      if (!secureClosed && (err || !(readEnded && writeEnded))) secure.destroy(err ?? new Error('the stream was destroyed'));
      callback(err);
    },
  });
  secure.on('data', (d: Buffer) => {
    if (!dup.push(d)) secure.pause();
  });
  secure.on('end', () => {
    readEnded = true;
    dup.push(null);
  });
  secure.on('error', (err: Error) => dup.destroy(err));
  secure.on('close', () => {
    secureClosed = true;
    if (waiting) waiting(new Error('the stream is closed'));
    waiting = null;
    // Closed before the peer's FIN, with no error (this node closing): a premature close, as Node
    // streams have it. After the FIN, what is buffered here is still the app's to read.
    if (!readEnded) dup.destroy();
  });
  return dup;
}
