// Property tests for the STUN codec: encode/decode roundtrips over every attribute kind, integrity
// and fingerprint detect any single flipped bit, and the decoder survives hostile input (it throws
// only StunDecodeError, terminates, and allocates no more than the datagram can describe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import {
  checkFingerprint,
  checkIntegrity,
  checkIntegritySha256,
  computeFingerprint,
  decodeMessage,
  encodeMessage,
  findAttribute,
  isKnownAttribute,
  looksLikeStun,
  readAttribute,
  readAttributes,
  shortTermKey,
  StunDecodeError,
  StunEncodeError,
  unknownRequiredAttributes,
  type Attribute,
  type EncodeOptions,
  type MessageSpec,
  type StunClass,
  type StunMessage,
} from '../../src/stun/index.js';
import { formatIPv4, formatIPv6 } from '../../src/net/ip.js';

const NUM_RUNS = Number(process.env.TRAVERSE_FC_RUNS ?? 300);

// ---------------------------------------------------------------------------------------------
// Arbitraries

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

const ipv4 = fc.tuple(u8, u8, u8, u8).map((b) => formatIPv4(Uint8Array.from(b), 0));

/** 16 bytes biased towards zero groups (so '::' compression is exercised) and IPv4-mapped. */
const ipv6Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.array(fc.oneof(fc.constant(0), fc.constant(0), u16), { minLength: 8, maxLength: 8 }).map((g) => {
    const b = new Uint8Array(16);
    g.forEach((x, i) => {
      b[2 * i] = x >> 8;
      b[2 * i + 1] = x & 0xff;
    });
    return b;
  }),
  fc.tuple(u8, u8, u8, u8).map(([a, b, c, d]) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d])),
);
const ipv6 = ipv6Bytes.map((b) => formatIPv6(b, 0));

const ADDRESS_TYPES = [
  'MAPPED-ADDRESS',
  'XOR-MAPPED-ADDRESS',
  'ALTERNATE-SERVER',
  'RESPONSE-ORIGIN',
  'OTHER-ADDRESS',
  'RESPONSE-ADDRESS',
  'SOURCE-ADDRESS',
  'CHANGED-ADDRESS',
] as const;

const addressAttr: fc.Arbitrary<Attribute> = fc.oneof(
  fc.record({ type: fc.constantFrom(...ADDRESS_TYPES), family: fc.constant(4 as const), address: ipv4, port: u16 }),
  fc.record({ type: fc.constantFrom(...ADDRESS_TYPES), family: fc.constant(6 as const), address: ipv6, port: u16 }),
);

const TEXT_LIMITS = { USERNAME: 513, REALM: 763, NONCE: 763, SOFTWARE: 763, 'ALTERNATE-DOMAIN': 255 } as const;
type TextType = keyof typeof TEXT_LIMITS;

/** Well-formed Unicode (any code point but lone surrogates), at most `limit` bytes of UTF-8. */
function utf8Text(limit: number): fc.Arbitrary<string> {
  const fits = (s: string): boolean => Buffer.byteLength(s, 'utf8') <= limit;
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: Math.floor(limit / 4) }),
    fc.string({ unit: 'grapheme', maxLength: 40 }).filter(fits),
    // edges: exactly at the limit, a byte-order mark up front (a UTF-8 decoder may eat it), NULs
    fc.constantFrom('x'.repeat(limit), 'é'.repeat(Math.floor(limit / 2)), '\ufeffbom', '\ufeff', '\0\0', ''),
  );
}

const textAttr: fc.Arbitrary<Attribute> = fc
  .constantFrom(...(Object.keys(TEXT_LIMITS) as TextType[]))
  .chain((type) => utf8Text(TEXT_LIMITS[type]).map((value) => ({ type, value })));

/** Unknown attribute codes: anything this implementation does not understand. */
const unknownCode = u16.filter((c) => !isKnownAttribute(c));

const otherAttr: fc.Arbitrary<Attribute> = fc.oneof(
  fc.record({ type: fc.constant('USERHASH' as const), value: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({
    type: fc.constant('ERROR-CODE' as const),
    code: fc.integer({ min: 300, max: 699 }),
    reason: utf8Text(763),
  }),
  fc.record({ type: fc.constant('UNKNOWN-ATTRIBUTES' as const), types: fc.array(u16, { maxLength: 24 }) }),
  fc.record({ type: fc.constant('PASSWORD-ALGORITHM' as const), algorithm: u16, parameters: bytes(24) }),
  fc.record({
    type: fc.constant('PASSWORD-ALGORITHMS' as const),
    algorithms: fc.array(fc.record({ algorithm: u16, parameters: bytes(13) }), { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('CHANGE-REQUEST' as const), changeIp: fc.boolean(), changePort: fc.boolean() }),
  fc.record({ type: fc.constant('RESPONSE-PORT' as const), port: u16 }),
  fc.record({ type: fc.constant('PADDING' as const), length: fc.integer({ min: 0, max: 67 }) }),
  fc.record({ type: fc.constant('PRIORITY' as const), value: u32 }),
  fc.constant({ type: 'USE-CANDIDATE' as const }),
  fc.record({
    type: fc.constantFrom('ICE-CONTROLLED' as const, 'ICE-CONTROLLING' as const),
    tieBreaker: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }),
  fc.record({ type: fc.constant('UNKNOWN' as const), code: unknownCode, value: bytes(40) }),
);

const attribute: fc.Arbitrary<Attribute> = fc.oneof(addressAttr, textAttr, otherAttr);

const COOKIE = [0x21, 0x12, 0xa4, 0x42];
const transactionId = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ minLength: 12, maxLength: 12 }) },
  // RFC 3489: 16 bytes and no magic cookie (a 16-byte id that starts with the cookie would be read
  // as an RFC 5389 message; such a client would be broken, so it is left out)
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ minLength: 16, maxLength: 16 })
      .filter((t) => !COOKIE.every((c, i) => t[i] === c)),
  },
);

const spec: fc.Arbitrary<MessageSpec> = fc.record({
  method: fc.integer({ min: 0, max: 0xfff }),
  cls: fc.constantFrom<StunClass>('request', 'indication', 'success', 'error'),
  transactionId,
  attributes: fc.array(attribute, { maxLength: 10 }),
});

const options: fc.Arbitrary<EncodeOptions> = fc.record(
  {
    integrityKey: fc.string({ unit: 'binary', maxLength: 24 }).map((p) => shortTermKey(p)),
    integritySha256Key: fc.string({ unit: 'binary', maxLength: 24 }).map((p) => shortTermKey(p)),
    integritySha256Length: fc.integer({ min: 4, max: 8 }).map((x) => x * 4),
    fingerprint: fc.boolean(),
    padByte: fc.constantFrom(0, 0x20, 0xff),
  },
  { requiredKeys: [] },
);

/** A valid encoded message with something for the checks to cover. */
const validMessage = fc
  .tuple(spec, options)
  .map(([s, o]) => ({ spec: s, options: o, bytes: encodeMessage(s, o) }));

// ---------------------------------------------------------------------------------------------
// Helpers

/** Uint8Array and Buffer compare unequal under deepStrictEqual; compare their bytes instead. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return `bytes:${Buffer.from(x).toString('hex')}`;
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === 'object') {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}

function decodeErrorOnly(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof StunDecodeError)) throw new Error(`threw ${String(e)} instead of StunDecodeError`, { cause: e });
    assert.equal(typeof e.offset, 'number');
  }
}

/** Byte positions where a flipped bit changes the message's structure rather than its content. */
function structuralPositions(m: StunMessage): Set<number> {
  const s = new Set<number>([0, 2, 3]);
  for (const a of m.attributes) for (let i = a.offset - 4; i < a.offset; i++) s.add(i);
  return s;
}

function flip(b: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(b);
  out[bit >> 3]! ^= 0x80 >> (bit & 7);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Roundtrip

test('encode then decode is the identity for arbitrary messages, and the checks pass', () => {
  fc.assert(
    fc.property(validMessage, ({ spec: s, options: o, bytes: b }) => {
      assert.ok(looksLikeStun(b) === (s.transactionId.length === 12));
      const m = decodeMessage(b);
      assert.equal(m.method, s.method);
      assert.equal(m.cls, s.cls);
      assert.equal(m.hasMagicCookie, s.transactionId.length === 12);
      assert.deepEqual(Buffer.from(m.transactionId), Buffer.from(s.transactionId));
      const got = readAttributes(m);
      assert.deepEqual(plain(got.slice(0, s.attributes.length)), plain(s.attributes));
      const tail = got.slice(s.attributes.length).map((a) => a.type);
      const expectTail = [
        ...(o.integrityKey ? ['MESSAGE-INTEGRITY'] : []),
        ...(o.integritySha256Key ? ['MESSAGE-INTEGRITY-SHA256'] : []),
        ...(o.fingerprint ? ['FINGERPRINT'] : []),
      ];
      assert.deepEqual(tail, expectTail);
      const sha = got.find((a) => a.type === 'MESSAGE-INTEGRITY-SHA256');
      if (sha && 'value' in sha && sha.value instanceof Uint8Array) {
        assert.equal(sha.value.length, o.integritySha256Length ?? 32);
      }
      assert.equal(checkIntegrity(m, o.integrityKey ?? new Uint8Array(1)), o.integrityKey ? 'ok' : 'missing');
      assert.equal(
        checkIntegritySha256(m, o.integritySha256Key ?? new Uint8Array(1)),
        o.integritySha256Key ? 'ok' : 'missing',
      );
      assert.equal(checkFingerprint(m), o.fingerprint ? 'ok' : 'missing');
      // Reading one attribute at a time agrees with reading them all.
      m.attributes.forEach((a, i) => assert.deepEqual(plain(readAttribute(m, a)), plain(got[i])));
    }),
    { numRuns: NUM_RUNS },
  );
});

test('decoding a plain Uint8Array (not a Buffer) gives the same attributes', () => {
  fc.assert(
    fc.property(validMessage, ({ bytes: b }) => {
      const a = readAttributes(decodeMessage(b));
      const u = readAttributes(decodeMessage(new Uint8Array(b)));
      assert.deepEqual(plain(u), plain(a));
    }),
    { numRuns: 100 },
  );
});

test('decoded values are copies: reusing the datagram buffer afterwards does not change them', () => {
  // (A TCP reader decodes from a stream buffer it later compacts; a copy of a value must stay put.)
  fc.assert(
    fc.property(validMessage, ({ bytes: b }) => {
      for (const raw of [Buffer.from(b), new Uint8Array(b)]) {
        const attrs = readAttributes(decodeMessage(raw));
        const before = plain(attrs);
        raw.fill(0xa5, 20);
        assert.deepEqual(plain(attrs), before);
      }
    }),
    { numRuns: 100 },
  );
});

test('computeFingerprint agrees with zlib.crc32 at every length (JS below the cutoff, zlib above)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 400 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n + 8 })), fc.nat(), (b, cut) => {
      const end = b.length === 0 ? 0 : cut % (b.length + 1);
      const expected = (crc32(Buffer.from(b.subarray(0, end))) ^ 0x5354554e) >>> 0;
      assert.equal(computeFingerprint(b, end), expected);
      assert.equal(computeFingerprint(Buffer.from(b), end), expected);
    }),
    { numRuns: NUM_RUNS * 2 },
  );
});

test('the integrity key and fingerprint are wrong-key / wrong-message sensitive', () => {
  fc.assert(
    fc.property(spec, fc.string({ minLength: 1, maxLength: 16 }), fc.string({ maxLength: 16 }), (s, pw, other) => {
      fc.pre(pw !== other);
      const b = encodeMessage(s, { integrityKey: shortTermKey(pw), integritySha256Key: shortTermKey(pw) });
      const m = decodeMessage(b);
      assert.equal(checkIntegrity(m, shortTermKey(other)), 'mismatch');
      assert.equal(checkIntegritySha256(m, shortTermKey(other)), 'mismatch');
    }),
    { numRuns: 100 },
  );
});

// ---------------------------------------------------------------------------------------------
// Single-bit flips in the covered region

const withChecks = validMessage.filter(
  ({ options: o }) => o.integrityKey !== undefined || o.integritySha256Key !== undefined || o.fingerprint === true,
);

type Check = 'MESSAGE-INTEGRITY' | 'MESSAGE-INTEGRITY-SHA256' | 'FINGERPRINT';

function runCheck(which: Check, m: StunMessage, o: EncodeOptions): string {
  if (which === 'MESSAGE-INTEGRITY') return checkIntegrity(m, o.integrityKey!);
  if (which === 'MESSAGE-INTEGRITY-SHA256') return checkIntegritySha256(m, o.integritySha256Key!);
  return checkFingerprint(m);
}

function checkOffset(which: Check, m: StunMessage): number {
  if (which === 'MESSAGE-INTEGRITY') return m.integrityOffset;
  if (which === 'MESSAGE-INTEGRITY-SHA256') return m.integritySha256Offset;
  return m.fingerprintOffset;
}

test('any single flipped bit in a covered region makes the check fail', () => {
  fc.assert(
    fc.property(withChecks, fc.nat(), fc.nat(), ({ options: o, bytes: b }, pick, bitSeed) => {
      const m = decodeMessage(b);
      const present: Check[] = [];
      if (o.integrityKey) present.push('MESSAGE-INTEGRITY');
      if (o.integritySha256Key) present.push('MESSAGE-INTEGRITY-SHA256');
      if (o.fingerprint) present.push('FINGERPRINT');
      const which = present[pick % present.length]!;
      const at = checkOffset(which, m);
      const valueLength = (b[at + 2]! << 8) | b[at + 3]!;
      // Covered: everything before the check attribute, and its own value.
      const coveredBits = (at + valueLength) * 8;
      let bit = bitSeed % coveredBits;
      if (bit >= at * 8) bit += 32; // skip the check attribute's own 4-byte header
      const flipped = flip(b, bit);
      const structural = structuralPositions(m).has(bit >> 3);
      let fm: StunMessage;
      try {
        fm = decodeMessage(flipped);
      } catch (e) {
        assert.ok(e instanceof StunDecodeError);
        assert.ok(structural, `a flip in content byte ${bit >> 3} made the message undecodable`);
        return;
      }
      const result = runCheck(which, fm, o);
      if (structural) assert.notEqual(result, 'ok', `flip of bit ${bit} went unnoticed by ${which}`);
      else {
        assert.equal(checkOffset(which, fm), at);
        assert.equal(result, 'mismatch', `flip of bit ${bit} (byte ${bit >> 3}) not detected by ${which}`);
      }
    }),
    { numRuns: NUM_RUNS * 2 },
  );
});

test('every bit of the RFC 5769-shaped response is covered by FINGERPRINT and MESSAGE-INTEGRITY', () => {
  const s: MessageSpec = {
    method: 1,
    cls: 'success',
    transactionId: Buffer.from('b7e7a701bc34d686fa87dfae', 'hex'),
    attributes: [
      { type: 'SOFTWARE', value: 'test vector' },
      { type: 'XOR-MAPPED-ADDRESS', family: 4, address: '192.0.2.1', port: 32853 },
    ],
  };
  const key = shortTermKey('VOkJxbRl1RmTxUk/WvJxBt');
  const b = encodeMessage(s, { integrityKey: key, fingerprint: true });
  const m = decodeMessage(b);
  for (let bit = 0; bit < b.length * 8; bit++) {
    const byte = bit >> 3;
    if (byte >= m.fingerprintOffset && byte < m.fingerprintOffset + 4) continue;
    let fm: StunMessage;
    try {
      fm = decodeMessage(flip(b, bit));
    } catch (e) {
      assert.ok(e instanceof StunDecodeError);
      continue;
    }
    assert.notEqual(checkFingerprint(fm), 'ok', `bit ${bit}`);
    if (byte < m.integrityOffset + 24 && (byte < m.integrityOffset || byte >= m.integrityOffset + 4)) {
      assert.notEqual(checkIntegrity(fm, key), 'ok', `bit ${bit}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Hostile input

const KEY = shortTermKey('k');

/** Runs every decoding entry point; asserts only StunDecodeError escapes and allocations are bounded. */
function exercise(b: Uint8Array): void {
  assert.equal(typeof looksLikeStun(b), 'boolean');
  for (const allowRfc3489 of [true, false]) {
    let m: StunMessage;
    try {
      m = decodeMessage(b, { allowRfc3489 });
    } catch (e) {
      decodeErrorOnly(() => {
        throw e;
      });
      continue;
    }
    const n = b.length;
    assert.ok(m.attributes.length <= (n - 20) / 4, 'more attributes than the datagram can hold');
    for (const a of m.attributes) assert.ok(a.offset >= 24 && a.offset + a.length <= n);
    assert.ok(m.transactionId.length === 12 || m.transactionId.length === 16);
    findAttribute(m, 0x0020);
    unknownRequiredAttributes(m, isKnownAttribute);
    for (const check of [() => checkFingerprint(m), () => checkIntegrity(m, KEY), () => checkIntegritySha256(m, KEY)]) {
      decodeErrorOnly(() => assert.ok(['ok', 'missing', 'mismatch'].includes(check())));
    }
    decodeErrorOnly(() => {
      readAttributes(m);
    });
    for (const raw of m.attributes) {
      decodeErrorOnly(() => assertBounded(readAttribute(m, raw), raw.length, n));
    }
  }
}

/** No decoded value is bigger than the bytes it came from. */
function assertBounded(a: Attribute, valueLength: number, n: number): void {
  for (const v of Object.values(a)) {
    if (typeof v === 'string') assert.ok(Buffer.byteLength(v, 'utf8') <= Math.max(valueLength, 64) && v.length <= n);
    else if (v instanceof Uint8Array) assert.ok(v.length <= valueLength);
    else if (Array.isArray(v)) assert.ok(v.length <= valueLength / 2);
  }
}

/** A 20-byte header that passes decodeMessage's checks, for a body of `bodyLength` bytes. */
function header(bodyLength: number, cookie: boolean, type = 0x0101): Buffer {
  const h = Buffer.alloc(20, 0xab);
  h.writeUInt16BE(type & 0x3fff, 0);
  h.writeUInt16BE(bodyLength, 2);
  if (cookie) h.writeUInt32BE(0x2112a442, 4);
  return h;
}

test('random bytes never make the decoder throw anything but StunDecodeError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), exercise), { numRuns: NUM_RUNS * 3 });
});

test('random bodies behind a valid header never make the decoder throw anything but StunDecodeError', () => {
  // Attribute headers drawn from the known types, so the typed readers see hostile values too.
  const knownTypes = [
    0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0008, 0x0009, 0x000a, 0x0014, 0x0015, 0x001c, 0x001d,
    0x001e, 0x0020, 0x0024, 0x0025, 0x0026, 0x0027, 0x8002, 0x8003, 0x8022, 0x8023, 0x8028, 0x8029, 0x802a,
    0x802b, 0x802c,
  ];
  const tlv = fc
    .tuple(fc.oneof(fc.constantFrom(...knownTypes), u16), fc.oneof(fc.integer({ min: 0, max: 40 }), u16), bytes(40))
    .map(([t, declared, v]) => {
      const out = Buffer.alloc(4 + ((v.length + 3) & ~3));
      out.writeUInt16BE(t, 0);
      out.writeUInt16BE(declared % 3 === 0 ? v.length : declared, 2);
      out.set(v, 4);
      return out;
    });
  fc.assert(
    fc.property(fc.array(tlv, { maxLength: 8 }), fc.boolean(), u16, (tlvs, cookie, type) => {
      const body = Buffer.concat(tlvs);
      exercise(Buffer.concat([header(body.length, cookie, type), body]));
    }),
    { numRuns: NUM_RUNS * 3 },
  );
});

type Mutation =
  | { kind: 'flip'; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; extra: Uint8Array }
  | { kind: 'length'; value: number }
  | { kind: 'attrLength'; which: number; value: number }
  | { kind: 'fixLength' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('length' as const), value: u16 }),
  fc.record({ kind: fc.constant('attrLength' as const), which: fc.nat(), value: fc.oneof(u16, fc.integer({ min: 0, max: 64 })) }),
  fc.constant({ kind: 'fixLength' as const }),
);

function mutate(b: Buffer, m: StunMessage, list: readonly Mutation[]): Buffer {
  let out: Buffer = Buffer.from(b);
  for (const mu of list) {
    switch (mu.kind) {
      case 'flip':
        if (out.length > 0) out = flip(out, mu.at % (out.length * 8));
        break;
      case 'truncate':
        out = out.subarray(0, mu.at % (out.length + 1));
        break;
      case 'extend':
        out = Buffer.concat([out, mu.extra]);
        break;
      case 'length':
        if (out.length >= 4) out.writeUInt16BE(mu.value, 2);
        break;
      case 'attrLength': {
        if (m.attributes.length === 0) break;
        const a = m.attributes[mu.which % m.attributes.length]!;
        if (a.offset <= out.length) out.writeUInt16BE(mu.value, a.offset - 2);
        break;
      }
      case 'fixLength':
        if (out.length >= 4) out.writeUInt16BE(Math.max(0, out.length - 20) & 0xffff, 2);
        break;
    }
  }
  return out;
}

test('mutated valid messages never make the decoder throw anything but StunDecodeError', () => {
  fc.assert(
    fc.property(validMessage, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ bytes: b }, list) => {
      exercise(mutate(b, decodeMessage(b), list));
    }),
    { numRuns: NUM_RUNS * 3 },
  );
});

test('a maximal datagram of empty attributes decodes promptly with one entry per 4 bytes', () => {
  const body = Buffer.alloc(0xfffc);
  for (let i = 0; i < body.length; i += 4) body.writeUInt16BE(0x8fff, i); // unknown, optional, empty
  const b = Buffer.concat([header(body.length, true), body]);
  const t0 = process.hrtime.bigint();
  const m = decodeMessage(b);
  const attrs = readAttributes(m);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(m.attributes.length, 0xfffc / 4);
  assert.equal(attrs.length, 0xfffc / 4);
  assert.ok(ms < 1000, `took ${ms} ms`);
});

// ---------------------------------------------------------------------------------------------
// Encoder and decoder agree on what is valid

test('what the encoder accepts, the decoder reads back (over-limit text, reasons, odd values)', () => {
  // Lengths around the limits: 63-300 code points of 1 to 4 bytes each.
  // (fast-check favours short strings within a range, so the length is drawn first.)
  const ofLength = (unit: 'binary' | 'binary-ascii', min: number, max: number): fc.Arbitrary<string> =>
    fc.integer({ min, max }).chain((n) => fc.string({ unit, minLength: n, maxLength: n }));
  const longish = fc.oneof(ofLength('binary', 63, 300), ofLength('binary-ascii', 250, 800));
  const wild: fc.Arbitrary<Attribute> = fc.oneof(
    fc
      .constantFrom(...(Object.keys(TEXT_LIMITS) as TextType[]))
      .chain((type) => longish.map((value) => ({ type, value }))),
    fc.record({
      type: fc.constant('ERROR-CODE' as const),
      code: fc.oneof(fc.integer({ min: 300, max: 699 }), fc.integer({ min: -1, max: 1000 })),
      reason: longish,
    }),
  );
  fc.assert(
    fc.property(fc.array(wild, { minLength: 1, maxLength: 2 }), (attributes) => {
      let b: Buffer;
      try {
        b = encodeMessage({ method: 1, cls: 'error', transactionId: new Uint8Array(12), attributes });
      } catch (e) {
        assert.ok(e instanceof StunEncodeError, String(e));
        return;
      }
      assert.deepEqual(plain(readAttributes(decodeMessage(b))), plain(attributes));
    }),
    { numRuns: NUM_RUNS },
  );
});
