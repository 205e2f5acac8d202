// Decoding the STUN header and the attribute TLVs (RFC 8489 sections 5 and 14).
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |0 0|     STUN Message Type     |         Message Length        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  Magic Cookie (0x2112A442)                    |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  Transaction ID (96 bits)                     |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// then attributes: type (16) | length (16) | value, padded to 4 bytes.
//
// A decoded message keeps the bytes as received: integrity and fingerprint are checked over them,
// never over a re-encoding. Attributes are indexed (type, offset, length); their values are read on
// demand by the functions in attributes.ts, so a server pays only for what it looks at.
import { Attr, classOf, HEADER_LENGTH, MAGIC_COOKIE, methodOf, type StunClass } from './constants.js';
import { StunDecodeError } from './errors.js';

export interface RawAttribute {
  readonly type: number;
  /** Offset of the value (after the 4-byte attribute header) in the message. */
  readonly offset: number;
  /** Length of the value, without padding. */
  readonly length: number;
}

export interface StunMessage {
  /** The datagram as received (a view, not a copy). */
  readonly raw: Uint8Array;
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes (RFC 5389/8489); for an RFC 3489 message, the 16 bytes after the length. */
  readonly transactionId: Uint8Array;
  /** False for an RFC 3489 message: no magic cookie, so no XOR-MAPPED-ADDRESS and no FINGERPRINT. */
  readonly hasMagicCookie: boolean;
  /**
   * The attributes in wire order. Attributes after MESSAGE-INTEGRITY(-SHA256) other than the
   * integrity attributes and FINGERPRINT are left out, as RFC 8489 section 14.5 says to ignore them.
   */
  readonly attributes: readonly RawAttribute[];
  /** Offset of the attribute header of MESSAGE-INTEGRITY, or -1. */
  readonly integrityOffset: number;
  /** Offset of the attribute header of MESSAGE-INTEGRITY-SHA256, or -1. */
  readonly integritySha256Offset: number;
  /** Offset of the attribute header of FINGERPRINT, or -1. */
  readonly fingerprintOffset: number;
}

export interface DecodeOptions {
  /** Accept messages without the magic cookie (RFC 3489 clients). Default true. */
  readonly allowRfc3489?: boolean;
}

/** Cheap test used to demultiplex a shared socket: could these bytes be a STUN message? */
export function looksLikeStun(buf: Uint8Array): boolean {
  return (
    buf.length >= HEADER_LENGTH &&
    (buf[0]! & 0xc0) === 0 &&
    (((buf[2]! << 8) | buf[3]!) & 3) === 0 &&
    buf[4] === 0x21 &&
    buf[5] === 0x12 &&
    buf[6] === 0xa4 &&
    buf[7] === 0x42
  );
}

/** Decodes one STUN message that fills `buf` exactly. Throws only StunDecodeError. */
export function decodeMessage(buf: Uint8Array, options?: DecodeOptions): StunMessage {
  const n = buf.length;
  if (n < HEADER_LENGTH) throw new StunDecodeError(`message of ${n} bytes is shorter than the 20-byte header`, 0);
  const b0 = buf[0]!;
  if ((b0 & 0xc0) !== 0) throw new StunDecodeError('the first two bits are not zero', 0);
  const type = (b0 << 8) | buf[1]!;
  const length = (buf[2]! << 8) | buf[3]!;
  if ((length & 3) !== 0) throw new StunDecodeError(`message length ${length} is not a multiple of 4`, 2);
  if (length + HEADER_LENGTH !== n) {
    throw new StunDecodeError(`message length ${length} does not match the ${n - HEADER_LENGTH} bytes after the header`, 2);
  }
  const cookie = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  const hasMagicCookie = cookie === MAGIC_COOKIE;
  if (!hasMagicCookie && options?.allowRfc3489 === false) {
    throw new StunDecodeError('no magic cookie (an RFC 3489 message)', 4);
  }

  const attributes: RawAttribute[] = [];
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let fingerprintOffset = -1;
  let pos = HEADER_LENGTH;
  while (pos < n) {
    if (fingerprintOffset !== -1) {
      throw new StunDecodeError('attribute after FINGERPRINT, which must be last', pos, Attr.Fingerprint);
    }
    if (pos + 4 > n) throw new StunDecodeError('truncated attribute header', pos);
    const at = (buf[pos]! << 8) | buf[pos + 1]!;
    const len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
    const valueOffset = pos + 4;
    const padded = (len + 3) & ~3;
    if (valueOffset + padded > n) {
      throw new StunDecodeError(`value of ${len} bytes runs past the end of the message`, pos, at);
    }
    if (at === Attr.MessageIntegrity) {
      if (integrityOffset === -1) {
        if (len !== 20) throw new StunDecodeError(`length ${len}, expected 20`, pos, at);
        integrityOffset = pos;
        attributes.push({ type: at, offset: valueOffset, length: len });
      }
    } else if (at === Attr.MessageIntegritySha256) {
      if (integritySha256Offset === -1) {
        if (len < 16 || len > 32 || (len & 3) !== 0) {
          throw new StunDecodeError(`length ${len}, expected a multiple of 4 from 16 to 32`, pos, at);
        }
        integritySha256Offset = pos;
        attributes.push({ type: at, offset: valueOffset, length: len });
      }
    } else if (at === Attr.Fingerprint) {
      if (len !== 4) throw new StunDecodeError(`length ${len}, expected 4`, pos, at);
      fingerprintOffset = pos;
      attributes.push({ type: at, offset: valueOffset, length: len });
    } else if (integrityOffset === -1 && integritySha256Offset === -1) {
      attributes.push({ type: at, offset: valueOffset, length: len });
    }
    pos = valueOffset + padded;
  }

  return {
    raw: buf,
    method: methodOf(type),
    cls: classOf(type),
    transactionId: hasMagicCookie ? buf.subarray(8, 20) : buf.subarray(4, 20),
    hasMagicCookie,
    attributes,
    integrityOffset,
    integritySha256Offset,
    fingerprintOffset,
  };
}

/** The first attribute of the given type, or undefined. */
export function findAttribute(msg: StunMessage, type: number): RawAttribute | undefined {
  const list = msg.attributes;
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    if (a.type === type) return a;
  }
  return undefined;
}

/** Comprehension-required attribute types in the message that `isKnown` does not accept. */
export function unknownRequiredAttributes(msg: StunMessage, isKnown: (type: number) => boolean): number[] {
  const out: number[] = [];
  for (const a of msg.attributes) if (a.type < 0x8000 && !isKnown(a.type) && !out.includes(a.type)) out.push(a.type);
  return out;
}
