// The one error type the codec throws. It names the attribute (when there is one) and the byte
// offset, so a bad datagram in a capture can be found by eye.
import { attributeName } from './constants.js';

export class StunDecodeError extends Error {
  override readonly name = 'StunDecodeError';
  /** The attribute being read, e.g. "XOR-MAPPED-ADDRESS", or null for the header. */
  readonly attribute: string | null;
  /** Byte offset into the message where the problem is. */
  readonly offset: number;

  constructor(reason: string, offset: number, attributeType?: number) {
    const attribute = attributeType === undefined ? null : attributeName(attributeType);
    super(attribute === null ? `${reason} (at byte ${offset})` : `${attribute}: ${reason} (at byte ${offset})`);
    this.attribute = attribute;
    this.offset = offset;
  }
}

/** Thrown by encoders for values that cannot be put on the wire (a bad address, a too-long string). */
export class StunEncodeError extends Error {
  override readonly name = 'StunEncodeError';
}
