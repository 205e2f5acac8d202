// Typed attribute values: one reader and one writer per attribute (RFC 8489 section 14,
// RFC 5780 section 7, RFC 3489 section 11.2, RFC 8445 section 16.1).
//
// Readers take the message and the indexed attribute and return a value or throw StunDecodeError
// naming the attribute and offset. Writers are sized first (attributeSize) and then written into a
// buffer that the encoder allocated once, so encoding allocates exactly the message.
import { Attr, MAGIC_COOKIE } from './constants.js';
import { StunDecodeError, StunEncodeError } from './errors.js';
import type { RawAttribute, StunMessage } from './message.js';
import { formatIPv4, formatIPv6, writeIPv4, writeIPv6 } from '../net/ip.js';

/** Attributes that carry a transport address. */
export type AddressAttributeType =
  | 'MAPPED-ADDRESS'
  | 'XOR-MAPPED-ADDRESS'
  | 'ALTERNATE-SERVER'
  | 'RESPONSE-ORIGIN'
  | 'OTHER-ADDRESS'
  | 'RESPONSE-ADDRESS'
  | 'SOURCE-ADDRESS'
  | 'CHANGED-ADDRESS';

export type TextAttributeType = 'USERNAME' | 'REALM' | 'NONCE' | 'SOFTWARE' | 'ALTERNATE-DOMAIN';

export interface TransportAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

export interface PasswordAlgorithm {
  readonly algorithm: number;
  readonly parameters: Uint8Array;
}

export type Attribute =
  | ({ readonly type: AddressAttributeType } & TransportAddress)
  | { readonly type: TextAttributeType; readonly value: string }
  | { readonly type: 'USERHASH'; readonly value: Uint8Array }
  | { readonly type: 'MESSAGE-INTEGRITY'; readonly value: Uint8Array }
  | { readonly type: 'MESSAGE-INTEGRITY-SHA256'; readonly value: Uint8Array }
  | { readonly type: 'FINGERPRINT'; readonly value: number }
  | { readonly type: 'ERROR-CODE'; readonly code: number; readonly reason: string }
  | { readonly type: 'UNKNOWN-ATTRIBUTES'; readonly types: readonly number[] }
  | { readonly type: 'PASSWORD-ALGORITHM'; readonly algorithm: number; readonly parameters: Uint8Array }
  | { readonly type: 'PASSWORD-ALGORITHMS'; readonly algorithms: readonly PasswordAlgorithm[] }
  | { readonly type: 'CHANGE-REQUEST'; readonly changeIp: boolean; readonly changePort: boolean }
  | { readonly type: 'RESPONSE-PORT'; readonly port: number }
  | { readonly type: 'PADDING'; readonly length: number }
  | { readonly type: 'PRIORITY'; readonly value: number }
  | { readonly type: 'USE-CANDIDATE' }
  | { readonly type: 'ICE-CONTROLLED' | 'ICE-CONTROLLING'; readonly tieBreaker: bigint }
  | { readonly type: 'UNKNOWN'; readonly code: number; readonly value: Uint8Array };

const ADDRESS_CODES: Readonly<Record<AddressAttributeType, number>> = {
  'MAPPED-ADDRESS': Attr.MappedAddress,
  'XOR-MAPPED-ADDRESS': Attr.XorMappedAddress,
  'ALTERNATE-SERVER': Attr.AlternateServer,
  'RESPONSE-ORIGIN': Attr.ResponseOrigin,
  'OTHER-ADDRESS': Attr.OtherAddress,
  'RESPONSE-ADDRESS': Attr.ResponseAddress,
  'SOURCE-ADDRESS': Attr.SourceAddress,
  'CHANGED-ADDRESS': Attr.ChangedAddress,
};

const TEXT_CODES: Readonly<Record<TextAttributeType, number>> = {
  USERNAME: Attr.Username,
  REALM: Attr.Realm,
  NONCE: Attr.Nonce,
  SOFTWARE: Attr.Software,
  'ALTERNATE-DOMAIN': Attr.AlternateDomain,
};

/** RFC 8489 bounds, in bytes of UTF-8 (USERNAME 513; REALM, NONCE, SOFTWARE 763; domain 255). */
const TEXT_LIMITS: Readonly<Record<TextAttributeType, number>> = {
  USERNAME: 513,
  REALM: 763,
  NONCE: 763,
  SOFTWARE: 763,
  'ALTERNATE-DOMAIN': 255,
};

const OTHER_CODES = {
  USERHASH: Attr.Userhash,
  'MESSAGE-INTEGRITY': Attr.MessageIntegrity,
  'MESSAGE-INTEGRITY-SHA256': Attr.MessageIntegritySha256,
  FINGERPRINT: Attr.Fingerprint,
  'ERROR-CODE': Attr.ErrorCode,
  'UNKNOWN-ATTRIBUTES': Attr.UnknownAttributes,
  'PASSWORD-ALGORITHM': Attr.PasswordAlgorithm,
  'PASSWORD-ALGORITHMS': Attr.PasswordAlgorithms,
  'CHANGE-REQUEST': Attr.ChangeRequest,
  'RESPONSE-PORT': Attr.ResponsePort,
  PADDING: Attr.Padding,
  PRIORITY: Attr.Priority,
  'USE-CANDIDATE': Attr.UseCandidate,
  'ICE-CONTROLLED': Attr.IceControlled,
  'ICE-CONTROLLING': Attr.IceControlling,
} as const;

type AddressAttribute = Extract<Attribute, { readonly type: AddressAttributeType }>;

/** Whether the attribute carries a transport address (all are written the same way). */
export function isAddressAttribute(a: Attribute): a is AddressAttribute {
  return a.type in ADDRESS_CODES;
}

/** The wire type code of an attribute value. */
export function attributeCode(a: Attribute): number {
  if (a.type === 'UNKNOWN') return a.code;
  return (
    (ADDRESS_CODES as Record<string, number>)[a.type] ??
    (TEXT_CODES as Record<string, number>)[a.type] ??
    (OTHER_CODES as Record<string, number>)[a.type]!
  );
}

const TYPE_BY_CODE = new Map<number, Attribute['type']>();
for (const [k, v] of Object.entries(ADDRESS_CODES)) TYPE_BY_CODE.set(v, k as Attribute['type']);
for (const [k, v] of Object.entries(TEXT_CODES)) TYPE_BY_CODE.set(v, k as Attribute['type']);
for (const [k, v] of Object.entries(OTHER_CODES)) TYPE_BY_CODE.set(v, k as Attribute['type']);

// ignoreBOM: a leading U+FEFF is part of the value, not a byte-order mark to strip.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Readers

function fail(reason: string, a: RawAttribute): never {
  throw new StunDecodeError(reason, a.offset - 4, a.type);
}

/** Reads MAPPED-ADDRESS-shaped values; XOR-MAPPED-ADDRESS when `xor` is set. */
export function readAddress(msg: StunMessage, a: RawAttribute, xor: boolean): TransportAddress {
  const b = msg.raw;
  const o = a.offset;
  if (a.length < 4) fail(`length ${a.length} is too short for an address`, a);
  const family = b[o + 1]!;
  let port = (b[o + 2]! << 8) | b[o + 3]!;
  if (xor) port ^= MAGIC_COOKIE >>> 16;
  if (family === 0x01) {
    if (a.length !== 8) fail(`length ${a.length}, expected 8 for IPv4`, a);
    if (!xor) return { family: 4, address: formatIPv4(b, o + 4), port };
    // the cookie is header bytes 4..7
    const address = `${b[o + 4]! ^ b[4]!}.${b[o + 5]! ^ b[5]!}.${b[o + 6]! ^ b[6]!}.${b[o + 7]! ^ b[7]!}`;
    return { family: 4, address, port };
  }
  if (family === 0x02) {
    if (a.length !== 20) fail(`length ${a.length}, expected 20 for IPv6`, a);
    if (!xor) return { family: 6, address: formatIPv6(b, o + 4), port };
    const x = new Uint8Array(16);
    for (let i = 0; i < 16; i++) x[i] = b[o + 4 + i]! ^ b[4 + i]!; // cookie + transaction id
    return { family: 6, address: formatIPv6(x, 0), port };
  }
  return fail(`unknown address family 0x${family.toString(16)}`, a);
}

/**
 * UTF-8 text from b[start, end). ASCII, by far the common case, is read straight from a Buffer
 * without making a view for the TextDecoder; anything else goes through the (fatal) decoder.
 */
function decodeUtf8(b: Uint8Array, start: number, end: number): string {
  if (b instanceof Buffer) {
    let i = start;
    while (i < end && b[i]! < 0x80) i++;
    if (i === end) return b.toString('latin1', start, end);
  }
  return utf8.decode(b.subarray(start, end));
}

function readText(msg: StunMessage, a: RawAttribute, limit: number): string {
  if (a.length > limit) fail(`${a.length} bytes is longer than the limit of ${limit}`, a);
  try {
    return decodeUtf8(msg.raw, a.offset, a.offset + a.length);
  } catch {
    return fail('value is not valid UTF-8', a);
  }
}

/**
 * A copy of b[start, end). Not b.slice(): on a Buffer (what dgram and net hand us) slice is a view,
 * so values would change when a TCP reader reuses its stream buffer.
 */
function copy(b: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(b, start, end);
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Decodes one indexed attribute into its typed value. */
export function readAttribute(msg: StunMessage, a: RawAttribute): Attribute {
  const b = msg.raw;
  const o = a.offset;
  switch (a.type) {
    case Attr.XorMappedAddress: {
      const x = readAddress(msg, a, true);
      return { type: 'XOR-MAPPED-ADDRESS', family: x.family, address: x.address, port: x.port };
    }
    case Attr.MappedAddress:
    case Attr.AlternateServer:
    case Attr.ResponseOrigin:
    case Attr.OtherAddress:
    case Attr.ResponseAddress:
    case Attr.SourceAddress:
    case Attr.ChangedAddress: {
      const x = readAddress(msg, a, false);
      return { type: TYPE_BY_CODE.get(a.type) as AddressAttributeType, family: x.family, address: x.address, port: x.port };
    }
    case Attr.Software:
      return { type: 'SOFTWARE', value: readText(msg, a, TEXT_LIMITS.SOFTWARE) };
    case Attr.Username:
    case Attr.Realm:
    case Attr.Nonce:
    case Attr.AlternateDomain: {
      const type = TYPE_BY_CODE.get(a.type) as TextAttributeType;
      return { type, value: readText(msg, a, TEXT_LIMITS[type]) };
    }
    case Attr.Userhash:
      if (a.length !== 32) fail(`length ${a.length}, expected 32`, a);
      return { type: 'USERHASH', value: copy(b, o, o + a.length) };
    case Attr.MessageIntegrity:
      return { type: 'MESSAGE-INTEGRITY', value: copy(b, o, o + a.length) };
    case Attr.MessageIntegritySha256:
      return { type: 'MESSAGE-INTEGRITY-SHA256', value: copy(b, o, o + a.length) };
    case Attr.Fingerprint:
      return { type: 'FINGERPRINT', value: readU32(b, o) };
    case Attr.ErrorCode: {
      if (a.length < 4) fail(`length ${a.length} is too short`, a);
      const cls = b[o + 2]! & 0x07;
      const num = b[o + 3]!;
      if (cls < 3 || cls > 6 || num > 99) fail(`code ${cls * 100 + num} is outside 300-699`, a);
      let reason: string;
      try {
        reason = decodeUtf8(b, o + 4, o + a.length);
      } catch {
        return fail('reason phrase is not valid UTF-8', a);
      }
      if (a.length - 4 > 763) fail('reason phrase is longer than 763 bytes', a);
      return { type: 'ERROR-CODE', code: cls * 100 + num, reason };
    }
    case Attr.UnknownAttributes: {
      if ((a.length & 1) !== 0) fail(`length ${a.length} is odd`, a);
      const types: number[] = [];
      for (let i = 0; i < a.length; i += 2) types.push((b[o + i]! << 8) | b[o + i + 1]!);
      return { type: 'UNKNOWN-ATTRIBUTES', types };
    }
    case Attr.PasswordAlgorithm: {
      if (a.length < 4) fail(`length ${a.length} is too short`, a);
      const algorithm = (b[o]! << 8) | b[o + 1]!;
      const plen = (b[o + 2]! << 8) | b[o + 3]!;
      if (4 + plen > a.length) fail(`parameters of ${plen} bytes run past the attribute`, a);
      return { type: 'PASSWORD-ALGORITHM', algorithm, parameters: copy(b, o + 4, o + 4 + plen) };
    }
    case Attr.PasswordAlgorithms: {
      const algorithms: PasswordAlgorithm[] = [];
      let p = o;
      const end = o + a.length;
      while (p < end) {
        if (p + 4 > end) fail('truncated algorithm entry', a);
        const algorithm = (b[p]! << 8) | b[p + 1]!;
        const plen = (b[p + 2]! << 8) | b[p + 3]!;
        const next = p + 4 + ((plen + 3) & ~3);
        if (p + 4 + plen > end) fail(`parameters of ${plen} bytes run past the attribute`, a);
        algorithms.push({ algorithm, parameters: copy(b, p + 4, p + 4 + plen) });
        p = next;
      }
      return { type: 'PASSWORD-ALGORITHMS', algorithms };
    }
    case Attr.ChangeRequest: {
      if (a.length !== 4) fail(`length ${a.length}, expected 4`, a);
      const flags = b[o + 3]!;
      return { type: 'CHANGE-REQUEST', changeIp: (flags & 0x04) !== 0, changePort: (flags & 0x02) !== 0 };
    }
    case Attr.ResponsePort:
      if (a.length !== 4) fail(`length ${a.length}, expected 4`, a);
      return { type: 'RESPONSE-PORT', port: (b[o]! << 8) | b[o + 1]! };
    case Attr.Padding:
      return { type: 'PADDING', length: a.length };
    case Attr.Priority:
      if (a.length !== 4) fail(`length ${a.length}, expected 4`, a);
      return { type: 'PRIORITY', value: readU32(b, o) };
    case Attr.UseCandidate:
      if (a.length !== 0) fail(`length ${a.length}, expected 0`, a);
      return { type: 'USE-CANDIDATE' };
    case Attr.IceControlled:
    case Attr.IceControlling:
      if (a.length !== 8) fail(`length ${a.length}, expected 8`, a);
      return {
        type: a.type === Attr.IceControlled ? 'ICE-CONTROLLED' : 'ICE-CONTROLLING',
        tieBreaker: (BigInt(readU32(b, o)) << 32n) | BigInt(readU32(b, o + 4)),
      };
    default:
      return { type: 'UNKNOWN', code: a.type, value: copy(b, o, o + a.length) };
  }
}

/** Every attribute of the message, decoded. */
export function readAttributes(msg: StunMessage): Attribute[] {
  const out: Attribute[] = new Array<Attribute>(msg.attributes.length);
  for (let i = 0; i < msg.attributes.length; i++) out[i] = readAttribute(msg, msg.attributes[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writers

const utf8Encoder = new TextEncoder();

function textBytes(a: { type: TextAttributeType; value: string }): number {
  const len = Buffer.byteLength(a.value, 'utf8');
  if (len > TEXT_LIMITS[a.type]) {
    throw new StunEncodeError(`${a.type} of ${len} bytes is longer than the limit of ${TEXT_LIMITS[a.type]}`);
  }
  return len;
}

/** Length of the attribute's value, without header and padding. */
export function attributeValueLength(a: Attribute): number {
  if (isAddressAttribute(a)) return a.family === 4 ? 8 : 20;
  switch (a.type) {
    case 'USERNAME':
    case 'REALM':
    case 'NONCE':
    case 'SOFTWARE':
    case 'ALTERNATE-DOMAIN':
      return textBytes(a);
    case 'USERHASH':
    case 'MESSAGE-INTEGRITY':
    case 'MESSAGE-INTEGRITY-SHA256':
    case 'UNKNOWN':
      return a.value.length;
    case 'FINGERPRINT':
    case 'CHANGE-REQUEST':
    case 'RESPONSE-PORT':
    case 'PRIORITY':
      return 4;
    case 'ERROR-CODE': {
      const len = Buffer.byteLength(a.reason, 'utf8');
      if (len > 763) throw new StunEncodeError(`ERROR-CODE reason of ${len} bytes is longer than the limit of 763`);
      return 4 + len;
    }
    case 'UNKNOWN-ATTRIBUTES':
      return 2 * a.types.length;
    case 'PASSWORD-ALGORITHM':
      return 4 + a.parameters.length;
    case 'PASSWORD-ALGORITHMS':
      return a.algorithms.reduce((s, x) => s + 4 + ((x.parameters.length + 3) & ~3), 0);
    case 'PADDING':
      return a.length;
    case 'USE-CANDIDATE':
      return 0;
    case 'ICE-CONTROLLED':
    case 'ICE-CONTROLLING':
      return 8;
  }
}

/** Header plus value plus padding. */
export function attributeSize(a: Attribute): number {
  return 4 + ((attributeValueLength(a) + 3) & ~3);
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Writes the attribute at `pos` in a message whose header (cookie and transaction id, needed for
 * XOR addresses) is already in `b`. Returns the offset after the padding.
 */
export function writeAttribute(b: Uint8Array, pos: number, a: Attribute, padByte = 0): number {
  const code = attributeCode(a);
  const len = attributeValueLength(a);
  b[pos] = code >> 8;
  b[pos + 1] = code & 0xff;
  b[pos + 2] = len >> 8;
  b[pos + 3] = len & 0xff;
  const o = pos + 4;
  if (isAddressAttribute(a)) writeAddressValue(b, o, a, a.type === 'XOR-MAPPED-ADDRESS');
  else switch (a.type) {
    case 'USERNAME':
    case 'REALM':
    case 'NONCE':
    case 'SOFTWARE':
    case 'ALTERNATE-DOMAIN':
      utf8Encoder.encodeInto(a.value, b.subarray(o, o + len));
      break;
    case 'USERHASH':
    case 'MESSAGE-INTEGRITY':
    case 'MESSAGE-INTEGRITY-SHA256':
    case 'UNKNOWN':
      b.set(a.value, o);
      break;
    case 'FINGERPRINT':
      writeU32(b, o, a.value);
      break;
    case 'ERROR-CODE': {
      if (!Number.isInteger(a.code) || a.code < 300 || a.code > 699) {
        throw new StunEncodeError(`ERROR-CODE ${a.code} is outside 300-699`);
      }
      b[o] = 0;
      b[o + 1] = 0;
      b[o + 2] = Math.floor(a.code / 100);
      b[o + 3] = a.code % 100;
      utf8Encoder.encodeInto(a.reason, b.subarray(o + 4, o + len));
      break;
    }
    case 'UNKNOWN-ATTRIBUTES':
      a.types.forEach((t, i) => {
        b[o + 2 * i] = t >> 8;
        b[o + 2 * i + 1] = t & 0xff;
      });
      break;
    case 'PASSWORD-ALGORITHM':
      b[o] = a.algorithm >> 8;
      b[o + 1] = a.algorithm & 0xff;
      b[o + 2] = a.parameters.length >> 8;
      b[o + 3] = a.parameters.length & 0xff;
      b.set(a.parameters, o + 4);
      break;
    case 'PASSWORD-ALGORITHMS': {
      let p = o;
      for (const x of a.algorithms) {
        b[p] = x.algorithm >> 8;
        b[p + 1] = x.algorithm & 0xff;
        b[p + 2] = x.parameters.length >> 8;
        b[p + 3] = x.parameters.length & 0xff;
        b.set(x.parameters, p + 4);
        const padded = (x.parameters.length + 3) & ~3;
        b.fill(0, p + 4 + x.parameters.length, p + 4 + padded);
        p += 4 + padded;
      }
      break;
    }
    case 'CHANGE-REQUEST':
      writeU32(b, o, (a.changeIp ? 0x04 : 0) | (a.changePort ? 0x02 : 0));
      break;
    case 'RESPONSE-PORT':
      b[o] = a.port >> 8;
      b[o + 1] = a.port & 0xff;
      b[o + 2] = 0;
      b[o + 3] = 0;
      break;
    case 'PADDING':
      b.fill(0, o, o + len);
      break;
    case 'PRIORITY':
      writeU32(b, o, a.value);
      break;
    case 'USE-CANDIDATE':
      break;
    case 'ICE-CONTROLLED':
    case 'ICE-CONTROLLING':
      writeU32(b, o, Number((a.tieBreaker >> 32n) & 0xffffffffn));
      writeU32(b, o + 4, Number(a.tieBreaker & 0xffffffffn));
      break;
  }
  const end = o + ((len + 3) & ~3);
  b.fill(padByte, o + len, end);
  return end;
}

/** Writes the 4-byte family/port prefix and the address; XORed with the header when `xor`. */
export function writeAddressValue(b: Uint8Array, o: number, a: TransportAddress, xor: boolean): void {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new StunEncodeError(`port ${a.port} is out of range`);
  b[o] = 0;
  b[o + 1] = a.family === 4 ? 0x01 : 0x02;
  const port = xor ? a.port ^ (MAGIC_COOKIE >>> 16) : a.port;
  b[o + 2] = port >> 8;
  b[o + 3] = port & 0xff;
  const ok = a.family === 4 ? writeIPv4(a.address, b, o + 4) : writeIPv6(a.address, b, o + 4);
  if (!ok) throw new StunEncodeError(`"${a.address}" is not an IPv${a.family} address`);
  if (xor) {
    const n = a.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) b[o + 4 + i]! ^= b[4 + i]!;
  }
}

