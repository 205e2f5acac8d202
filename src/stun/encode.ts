// Encoding a whole message: sized once, allocated once, integrity and fingerprint appended last.
import { createHmac } from 'node:crypto';
import { Attr, HEADER_LENGTH, MAGIC_COOKIE, messageType, type StunClass } from './constants.js';
import { attributeSize, writeAttribute, type Attribute } from './attributes.js';
import { computeFingerprint } from './integrity.js';
import { StunEncodeError } from './errors.js';

export interface MessageSpec {
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes; or 16 bytes for an RFC 3489 message, which has no magic cookie. */
  readonly transactionId: Uint8Array;
  readonly attributes: readonly Attribute[];
}

export interface EncodeOptions {
  /** Appends MESSAGE-INTEGRITY (HMAC-SHA1) with this key. */
  readonly integrityKey?: Uint8Array;
  /** Appends MESSAGE-INTEGRITY-SHA256 with this key. */
  readonly integritySha256Key?: Uint8Array;
  /** Length of the MESSAGE-INTEGRITY-SHA256 value: a multiple of 4 from 16 to 32 (default 32). */
  readonly integritySha256Length?: number;
  /** Appends FINGERPRINT. */
  readonly fingerprint?: boolean;
  /** The value of padding bytes (0 by default; RFC 5769's samples use 0x20). */
  readonly padByte?: number;
}

/** Encodes a message. Throws StunEncodeError for values that cannot be put on the wire. */
export function encodeMessage(spec: MessageSpec, options: EncodeOptions = {}): Buffer {
  const tid = spec.transactionId;
  if (tid.length !== 12 && tid.length !== 16) {
    throw new StunEncodeError(`transaction id of ${tid.length} bytes; expected 12 (or 16 for RFC 3489)`);
  }
  const sha256Len = options.integritySha256Length ?? 32;
  if (options.integritySha256Key && (sha256Len < 16 || sha256Len > 32 || sha256Len % 4 !== 0)) {
    throw new StunEncodeError(`MESSAGE-INTEGRITY-SHA256 length ${sha256Len}; expected a multiple of 4 from 16 to 32`);
  }
  let size = HEADER_LENGTH;
  for (const a of spec.attributes) size += attributeSize(a);
  if (options.integrityKey) size += 24;
  if (options.integritySha256Key) size += 4 + sha256Len;
  if (options.fingerprint) size += 8;
  if (size - HEADER_LENGTH > 0xffff) throw new StunEncodeError(`message of ${size} bytes exceeds the 16-bit length`);

  const b = Buffer.allocUnsafe(size);
  const type = messageType(spec.method, spec.cls);
  b[0] = type >> 8;
  b[1] = type & 0xff;
  if (tid.length === 12) {
    b.writeUInt32BE(MAGIC_COOKIE, 4);
    b.set(tid, 8);
  } else b.set(tid, 4);
  let pos = HEADER_LENGTH;
  for (const a of spec.attributes) pos = writeAttribute(b, pos, a, options.padByte ?? 0);

  // The buffer is ours, so the length field is set in place for each HMAC (no header copy as
  // computeHmac, which works on received bytes, has to make).
  if (options.integrityKey) {
    writeLength(b, pos + 24 - HEADER_LENGTH);
    const mac = createHmac('sha1', options.integrityKey).update(b.subarray(0, pos)).digest();
    pos = writeRawAttribute(b, pos, Attr.MessageIntegrity, mac);
  }
  if (options.integritySha256Key) {
    writeLength(b, pos + 4 + sha256Len - HEADER_LENGTH);
    const mac = createHmac('sha256', options.integritySha256Key).update(b.subarray(0, pos)).digest();
    pos = writeRawAttribute(b, pos, Attr.MessageIntegritySha256, mac.subarray(0, sha256Len));
  }
  if (options.fingerprint) {
    writeLength(b, pos + 8 - HEADER_LENGTH);
    const fp = computeFingerprint(b, pos);
    b.writeUInt16BE(Attr.Fingerprint, pos);
    b.writeUInt16BE(4, pos + 2);
    b.writeUInt32BE(fp, pos + 4);
    pos += 8;
  }
  writeLength(b, pos - HEADER_LENGTH);
  return b;
}

function writeLength(b: Uint8Array, length: number): void {
  b[2] = length >> 8;
  b[3] = length & 0xff;
}

function writeRawAttribute(b: Buffer, pos: number, type: number, value: Uint8Array): number {
  b.writeUInt16BE(type, pos);
  b.writeUInt16BE(value.length, pos + 2);
  b.set(value, pos + 4);
  return pos + 4 + value.length;
}
