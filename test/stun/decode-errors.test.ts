// StunDecodeError names the attribute and the byte offset of the problem: exact values for each
// way a datagram can be malformed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, readAttribute, readAttributes, StunDecodeError, type StunMessage } from '../../src/stun/index.js';

const TID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');

/** One TLV; `declared` overrides the length field; the value is padded to 4 bytes. */
function tlv(type: number, value: Uint8Array | string, declared?: number): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const out = Buffer.alloc(4 + ((v.length + 3) & ~3));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(declared ?? v.length, 2);
  v.copy(out, 4);
  return out;
}

/** A Binding success response (header with the right length) around the given TLVs. */
function message(...tlvs: Buffer[]): Buffer {
  const body = Buffer.concat(tlvs);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0101, 0);
  h.writeUInt16BE(body.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  TID.copy(h, 8);
  return Buffer.concat([h, body]);
}

const SOFTWARE = tlv(0x8022, 'test vector'); // 4 + 12 bytes: the next attribute starts at byte 36

function decodeError(fn: () => unknown): StunDecodeError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StunDecodeError, `expected StunDecodeError, got ${String(e)}`);
    assert.equal(e.name, 'StunDecodeError');
    return e;
  }
  assert.fail('did not throw');
}

function expectHeaderError(buf: Uint8Array, offset: number, pattern: RegExp, allowRfc3489?: boolean): void {
  const e = decodeError(() => decodeMessage(buf, allowRfc3489 === undefined ? undefined : { allowRfc3489 }));
  assert.equal(e.attribute, null);
  assert.equal(e.offset, offset);
  assert.match(e.message, pattern);
}

/** Decodes fine; reading the attribute at index `i` fails with `attribute` at `offset`. */
function expectAttributeError(buf: Buffer, i: number, attribute: string, offset: number, pattern: RegExp): void {
  const m: StunMessage = decodeMessage(buf);
  const e = decodeError(() => readAttribute(m, m.attributes[i]!));
  assert.equal(e.attribute, attribute);
  assert.equal(e.offset, offset);
  assert.match(e.message, pattern);
  assert.ok(e.message.startsWith(`${attribute}: `));
  assert.ok(e.message.endsWith(`(at byte ${offset})`));
  // readAttributes reports the same error
  const all = decodeError(() => readAttributes(m));
  assert.equal(all.attribute, attribute);
  assert.equal(all.offset, offset);
}

test('header: too short, first bits, length field, cookie', () => {
  expectHeaderError(new Uint8Array(0), 0, /0 bytes is shorter than the 20-byte header/);
  expectHeaderError(message().subarray(0, 19), 0, /19 bytes is shorter/);
  const firstBits = message();
  firstBits[0] = 0x40;
  expectHeaderError(firstBits, 0, /first two bits/);
  const odd = message(SOFTWARE);
  odd.writeUInt16BE(15, 2);
  expectHeaderError(odd, 2, /length 15 is not a multiple of 4/);
  const long = message(SOFTWARE);
  long.writeUInt16BE(20, 2);
  expectHeaderError(long, 2, /length 20 does not match the 16 bytes after the header/);
  const extraBytes = Buffer.concat([message(SOFTWARE), Buffer.alloc(4)]);
  expectHeaderError(extraBytes, 2, /length 16 does not match the 20 bytes/);
  const noCookie = message();
  noCookie.writeUInt32BE(0x01020304, 4);
  expectHeaderError(noCookie, 4, /no magic cookie/, false);
  assert.equal(decodeMessage(noCookie).hasMagicCookie, false); // accepted by default (RFC 3489)
});

test('attribute TLVs: value past the end, integrity and fingerprint lengths, attribute after FINGERPRINT', () => {
  // SOFTWARE declares 100 bytes but the message has 12 after its header: reported at its header.
  let e = decodeError(() => decodeMessage(message(tlv(0x8022, 'test vector', 100))));
  assert.equal(e.attribute, 'SOFTWARE');
  assert.equal(e.offset, 20);
  assert.match(e.message, /value of 100 bytes runs past the end/);

  // A truncated second attribute: the header is there, the value is not.
  e = decodeError(() => decodeMessage(message(SOFTWARE, tlv(0x0020, new Uint8Array(4), 8))));
  assert.equal(e.attribute, 'XOR-MAPPED-ADDRESS');
  assert.equal(e.offset, 36);

  e = decodeError(() => decodeMessage(message(SOFTWARE, tlv(0x0008, new Uint8Array(16)))));
  assert.equal(e.attribute, 'MESSAGE-INTEGRITY');
  assert.equal(e.offset, 36);
  assert.match(e.message, /length 16, expected 20/);

  e = decodeError(() => decodeMessage(message(SOFTWARE, tlv(0x001c, new Uint8Array(18)))));
  assert.equal(e.attribute, 'MESSAGE-INTEGRITY-SHA256');
  assert.equal(e.offset, 36);
  assert.match(e.message, /length 18, expected a multiple of 4 from 16 to 32/);

  e = decodeError(() => decodeMessage(message(SOFTWARE, tlv(0x001c, new Uint8Array(36)))));
  assert.equal(e.attribute, 'MESSAGE-INTEGRITY-SHA256');
  assert.equal(e.offset, 36);

  e = decodeError(() => decodeMessage(message(SOFTWARE, tlv(0x8028, new Uint8Array(8)))));
  assert.equal(e.attribute, 'FINGERPRINT');
  assert.equal(e.offset, 36);
  assert.match(e.message, /length 8, expected 4/);

  // Anything after FINGERPRINT: named FINGERPRINT, at the offending attribute's header.
  e = decodeError(() => decodeMessage(message(tlv(0x8028, new Uint8Array(4)), SOFTWARE)));
  assert.equal(e.attribute, 'FINGERPRINT');
  assert.equal(e.offset, 28);
  assert.match(e.message, /after FINGERPRINT/);
});

test('address attributes: family, lengths', () => {
  const xma = (v: number[], declared?: number): Buffer => tlv(0x0020, Uint8Array.from(v), declared);
  expectAttributeError(
    message(SOFTWARE, xma([0, 0x03, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43])),
    1,
    'XOR-MAPPED-ADDRESS',
    36,
    /unknown address family 0x3/,
  );
  expectAttributeError(message(SOFTWARE, xma([0, 0x01, 0xa1])), 1, 'XOR-MAPPED-ADDRESS', 36, /length 3 is too short/);
  expectAttributeError(
    message(SOFTWARE, xma([0, 0x01, 0xa1, 0x47, 1, 2, 3, 4, 5, 6, 7, 8])),
    1,
    'XOR-MAPPED-ADDRESS',
    36,
    /length 12, expected 8 for IPv4/,
  );
  expectAttributeError(
    message(SOFTWARE, tlv(0x0001, Uint8Array.from([0, 0x02, 0, 80, 1, 2, 3, 4]))),
    1,
    'MAPPED-ADDRESS',
    36,
    /length 8, expected 20 for IPv6/,
  );
  expectAttributeError(
    message(tlv(0x802c, Uint8Array.from([0, 0x00, 0, 80, 1, 2, 3, 4]))),
    0,
    'OTHER-ADDRESS',
    20,
    /unknown address family 0x0/,
  );
});

test('text attributes: over-long USERNAME, invalid UTF-8', () => {
  expectAttributeError(message(SOFTWARE, tlv(0x0006, 'u'.repeat(514))), 1, 'USERNAME', 36, /514 bytes is longer than the limit of 513/);
  assert.deepEqual(readAttributes(decodeMessage(message(tlv(0x0006, 'u'.repeat(513)))))[0], {
    type: 'USERNAME',
    value: 'u'.repeat(513),
  });
  expectAttributeError(message(SOFTWARE, tlv(0x0014, 'r'.repeat(764))), 1, 'REALM', 36, /764 bytes is longer than the limit of 763/);
  expectAttributeError(message(tlv(0x8003, 'd'.repeat(256))), 0, 'ALTERNATE-DOMAIN', 20, /limit of 255/);
  expectAttributeError(message(SOFTWARE, tlv(0x0015, Uint8Array.from([0x61, 0xc3]))), 1, 'NONCE', 36, /not valid UTF-8/);
  expectAttributeError(message(tlv(0x8022, Uint8Array.from([0xed, 0xa0, 0x80]))), 0, 'SOFTWARE', 20, /not valid UTF-8/);
});

test('ERROR-CODE, UNKNOWN-ATTRIBUTES, PASSWORD-ALGORITHM(S), fixed-length attributes', () => {
  const ec = (cls: number, num: number, reason = ''): Buffer =>
    tlv(0x0009, Buffer.concat([Buffer.from([0, 0, cls, num]), Buffer.from(reason)]));
  expectAttributeError(message(SOFTWARE, ec(2, 99)), 1, 'ERROR-CODE', 36, /code 299 is outside 300-699/);
  expectAttributeError(message(SOFTWARE, ec(7, 0)), 1, 'ERROR-CODE', 36, /code 700 is outside/);
  expectAttributeError(message(SOFTWARE, ec(4, 100)), 1, 'ERROR-CODE', 36, /outside 300-699/);
  expectAttributeError(message(SOFTWARE, tlv(0x0009, Uint8Array.from([0, 0, 4]))), 1, 'ERROR-CODE', 36, /length 3 is too short/);
  expectAttributeError(message(SOFTWARE, ec(4, 0, 'x'.repeat(764))), 1, 'ERROR-CODE', 36, /longer than 763/);
  expectAttributeError(message(SOFTWARE, tlv(0x0009, Uint8Array.from([0, 0, 4, 0, 0xff]))), 1, 'ERROR-CODE', 36, /reason phrase is not valid UTF-8/);
  expectAttributeError(message(SOFTWARE, tlv(0x000a, Uint8Array.from([0, 1, 0]))), 1, 'UNKNOWN-ATTRIBUTES', 36, /length 3 is odd/);
  expectAttributeError(
    message(SOFTWARE, tlv(0x001d, Uint8Array.from([0, 1, 0, 9, 1, 2, 3, 4]))),
    1,
    'PASSWORD-ALGORITHM',
    36,
    /parameters of 9 bytes run past/,
  );
  expectAttributeError(
    message(SOFTWARE, tlv(0x8002, Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 5, 1, 2, 3, 4]))),
    1,
    'PASSWORD-ALGORITHMS',
    36,
    /parameters of 5 bytes run past/,
  );
  expectAttributeError(
    message(SOFTWARE, tlv(0x8002, Uint8Array.from([0, 1, 0, 0, 0, 2]))),
    1,
    'PASSWORD-ALGORITHMS',
    36,
    /truncated algorithm entry/,
  );
  expectAttributeError(message(SOFTWARE, tlv(0x001e, new Uint8Array(31))), 1, 'USERHASH', 36, /length 31, expected 32/);
  expectAttributeError(message(SOFTWARE, tlv(0x0003, new Uint8Array(8))), 1, 'CHANGE-REQUEST', 36, /length 8, expected 4/);
  expectAttributeError(message(SOFTWARE, tlv(0x0027, new Uint8Array(2))), 1, 'RESPONSE-PORT', 36, /length 2, expected 4/);
  expectAttributeError(message(SOFTWARE, tlv(0x0024, new Uint8Array(8))), 1, 'PRIORITY', 36, /length 8, expected 4/);
  expectAttributeError(message(SOFTWARE, tlv(0x0025, new Uint8Array(4))), 1, 'USE-CANDIDATE', 36, /length 4, expected 0/);
  expectAttributeError(message(SOFTWARE, tlv(0x8029, new Uint8Array(4))), 1, 'ICE-CONTROLLED', 36, /length 4, expected 8/);
  expectAttributeError(message(SOFTWARE, tlv(0x802a, new Uint8Array(12))), 1, 'ICE-CONTROLLING', 36, /length 12, expected 8/);
});

test('the offset counts from the message start for attributes deep in the message', () => {
  const filler = [tlv(0x8fff, new Uint8Array(100)), tlv(0x8ffe, new Uint8Array(3)), SOFTWARE]; // 104 + 8 + 16
  const buf = message(...filler, tlv(0x0020, Uint8Array.from([0, 9, 0, 0, 0, 0, 0, 0])));
  expectAttributeError(buf, 3, 'XOR-MAPPED-ADDRESS', 20 + 104 + 8 + 16, /unknown address family 0x9/);
});
