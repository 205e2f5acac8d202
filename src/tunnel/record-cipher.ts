// The protection of a stream's frames (frames.ts): ChaCha20-Poly1305 from node:crypto (OpenSSL's
// vectorised code) with the two keys of the stream's Noise handshake, one per direction. Every
// frame is sealed, the control frames too (HELLO, ACK, FIN, RST, PING: their plaintext is empty
// or a reason, the header is the associated data), so neither a relay nor anyone on a path can
// forge an acknowledgement (which would make the sender drop bytes it must keep for a carrier
// move), an end of stream (a truncation) or a reset.
//
// Nonce: the frame type (1 byte), 3 zero bytes, and the frame's 8-byte value: a DATA frame's
// stream offset, a PING's counter, HELLO/ACK's received offset, FIN's end offset, 0 for the RST.
// A nonce never seals two different things under one key:
//   - each stream has its own keys (a fresh ephemeral Noise handshake per stream), and each
//     direction its own key (Noise's split), so the two ends never share a nonce space;
//   - DATA: offsets only grow, and a frame is sealed once; a resend (after a carrier move) sends
//     the very same bytes again, never a frame re-cut differently at the same offset;
//   - HELLO/ACK/FIN at a given offset, and the one RST, always seal the same (empty or fixed)
//     plaintext under the same header: sending one again repeats identical bytes;
//   - PING counts up.
// Limits (as TLS 1.3 and WireGuard bound a key's use): offsets are safe integers, so one stream
// seals at most 2^53 bytes per direction (the session refuses to go beyond, session.ts); there is
// no need to rekey before that for ChaCha20-Poly1305 (RFC 8446 5.5 sets no record limit for it
// below 2^64 records, and one forgery attempt ends the stream, far below its integrity limit).
// Forward secrecy comes from the per-stream ephemeral keys: a stream's keys die with it.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { FrameType } from './frames.js';

export const TAG_BYTES = 16;
const KEY_BYTES = 32;
const ALGORITHM = 'chacha20-poly1305';

/** The keys a stream's handshake produced: `tx` seals what we send, `rx` opens what we receive. */
export interface StreamKeys {
  readonly tx: Uint8Array;
  readonly rx: Uint8Array;
}

/** A frame that does not authenticate: tampered with, replayed under another header, or another key. */
export class RecordError extends Error {
  override readonly name = 'RecordError';
}

function byteLength(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

export class RecordCipher {
  private readonly tx: KeyObject;
  private readonly rx: KeyObject;
  /** Reused: createCipheriv copies the nonce it is given. */
  private readonly nonce = Buffer.alloc(12);

  constructor(keys: StreamKeys) {
    if (keys.tx.length !== KEY_BYTES || keys.rx.length !== KEY_BYTES) throw new RangeError(`stream keys must be ${KEY_BYTES} bytes`);
    this.tx = createSecretKey(keys.tx);
    this.rx = createSecretKey(keys.rx);
  }

  /**
   * Seals a frame: `head` is its whole header, the last TAG_BYTES of it room for the tag, which
   * is written there; what comes before the tag is the associated data, and the nonce is made
   * from it too (nonceOf), so a frame cannot be sealed under a nonce its header does not name.
   * `body` is the plaintext, in pieces (no copy to join them). Returns the ciphertext pieces,
   * fresh buffers (the plaintext is left untouched).
   */
  seal(head: Buffer, body: readonly Buffer[]): Buffer[] {
    const tagAt = head.length - TAG_BYTES;
    const c = createCipheriv(ALGORITHM, this.tx, this.nonceOf(head), { authTagLength: TAG_BYTES });
    c.setAAD(head.subarray(0, tagAt), { plaintextLength: byteLength(body) });
    const out: Buffer[] = [];
    for (const piece of body) if (piece.length > 0) out.push(c.update(piece));
    c.final();
    c.getAuthTag().copy(head, tagAt);
    return out;
  }

  /**
   * Opens a frame sealed by the peer's `seal`: its whole header (the tag last), its ciphertext in
   * pieces. Returns the plaintext pieces, or throws RecordError; nothing is returned before the
   * whole frame has been checked.
   */
  open(head: Buffer, body: readonly Buffer[]): Buffer[] {
    const tagAt = head.length - TAG_BYTES;
    const d = createDecipheriv(ALGORITHM, this.rx, this.nonceOf(head), { authTagLength: TAG_BYTES });
    d.setAAD(head.subarray(0, tagAt), { plaintextLength: byteLength(body) });
    d.setAuthTag(head.subarray(tagAt));
    const out: Buffer[] = [];
    for (const piece of body) if (piece.length > 0) out.push(d.update(piece));
    try {
      d.final();
    } catch {
      throw new RecordError(`a frame of type ${head[0]} failed authentication (tampered with, replayed, or sealed with another key)`);
    }
    return out;
  }

  /** The frame type, 3 zero bytes, and the header's 8-byte value (frames.ts); zeros for the RST. */
  private nonceOf(head: Buffer): Buffer {
    const n = this.nonce;
    n.fill(0);
    n[0] = head[0]!;
    if (head[0] !== FrameType.Rst) head.copy(n, 4, 1, 9);
    return n;
  }

}
