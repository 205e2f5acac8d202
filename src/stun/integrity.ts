// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, computed and checked over the bytes
// as received. Each covers the message up to its own attribute, with the header's length field
// counting up to the end of that attribute (RFC 8489 sections 14.5-14.7).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { FINGERPRINT_XOR, HEADER_LENGTH } from './constants.js';
import type { StunMessage } from './message.js';

export type CheckResult = 'ok' | 'missing' | 'mismatch';

/** HMAC over bytes [0, attrOffset) of `b` as if the length field said attrOffset + 4 + macLength - 20. */
export function computeHmac(
  hash: 'sha1' | 'sha256',
  key: Uint8Array,
  b: Uint8Array,
  attrOffset: number,
  macLength: number,
): Buffer {
  const header = Buffer.from(b.subarray(0, HEADER_LENGTH));
  const length = attrOffset + 4 + macLength - HEADER_LENGTH;
  header[2] = length >> 8;
  header[3] = length & 0xff;
  return createHmac(hash, key).update(header).update(b.subarray(HEADER_LENGTH, attrOffset)).digest();
}

/** CRC-32 of bytes [0, attrOffset) XOR 0x5354554e; the length field must already count FINGERPRINT. */
export function computeFingerprint(b: Uint8Array, attrOffset: number): number {
  return (crc32(b.subarray(0, attrOffset)) ^ FINGERPRINT_XOR) >>> 0;
}

export function checkFingerprint(msg: StunMessage): CheckResult {
  const at = msg.fingerprintOffset;
  if (at === -1) return 'missing';
  const b = msg.raw;
  const got = ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
  return got === computeFingerprint(b, at) ? 'ok' : 'mismatch';
}

/** Checks MESSAGE-INTEGRITY (HMAC-SHA1) with a short-term or long-term key. */
export function checkIntegrity(msg: StunMessage, key: Uint8Array): CheckResult {
  const at = msg.integrityOffset;
  if (at === -1) return 'missing';
  const mac = computeHmac('sha1', key, msg.raw, at, 20);
  return timingSafeEqual(mac, msg.raw.subarray(at + 4, at + 24)) ? 'ok' : 'mismatch';
}

/** Checks MESSAGE-INTEGRITY-SHA256, which may be truncated to 16..32 bytes. */
export function checkIntegritySha256(msg: StunMessage, key: Uint8Array): CheckResult {
  const at = msg.integritySha256Offset;
  if (at === -1) return 'missing';
  const b = msg.raw;
  const len = (b[at + 2]! << 8) | b[at + 3]!;
  const mac = computeHmac('sha256', key, b, at, len).subarray(0, len);
  return timingSafeEqual(mac, b.subarray(at + 4, at + 4 + len)) ? 'ok' : 'mismatch';
}
