// STUN over a byte stream (RFC 8489 section 6.2.2): messages back to back, each delimited by the
// length in its own header. The decoder holds at most one incomplete message, so a peer cannot
// make it buffer more than 20 + 65535 bytes (and less with maxMessage).
import { HEADER_LENGTH } from './constants.js';
import { StunDecodeError } from './errors.js';

export class StunStreamDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessage = 2048) {}

  /** Bytes waiting for the rest of their message. */
  get pendingBytes(): number {
    return this.buffered.length;
  }

  /**
   * Adds bytes from the stream and returns the complete messages they finish, in order.
   * Throws StunDecodeError when the stream cannot be STUN (the connection should be closed).
   */
  push(chunk: Buffer): Buffer[] {
    let buf = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const out: Buffer[] = [];
    while (buf.length >= 4) {
      if ((buf[0]! & 0xc0) !== 0) throw new StunDecodeError('stream is not STUN: the first two bits are not zero', 0);
      const size = HEADER_LENGTH + buf.readUInt16BE(2);
      if (size > this.maxMessage) {
        throw new StunDecodeError(`message of ${size} bytes is larger than the ${this.maxMessage}-byte limit`, 2);
      }
      if (buf.length < size) break;
      out.push(Buffer.from(buf.subarray(0, size)));
      buf = buf.subarray(size);
    }
    this.buffered = Buffer.from(buf);
    return out;
  }
}
