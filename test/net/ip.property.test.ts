// IP literals: text <-> bytes, checked against Node's own parser (net.isIPv4/isIPv6,
// net.SocketAddress, which canonicalises through libuv's inet_pton/inet_ntop) and the WHATWG URL
// host serializer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { formatIPv4, formatIPv6, ipFamily, writeIPv4, writeIPv6 } from '../../src/net/ip.js';

const NUM_RUNS = Number(process.env.TRAVERSE_FC_RUNS ?? 500);
const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });

function groupsToBytes(g: readonly number[]): Uint8Array {
  const b = new Uint8Array(16);
  g.forEach((x, i) => {
    b[2 * i] = x >> 8;
    b[2 * i + 1] = x & 0xff;
  });
  return b;
}

function groupsOf(b: Uint8Array): number[] {
  return Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
}

/** Biased towards runs of zero groups, and IPv4-mapped / IPv4-compatible shapes. */
const ipv6Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.array(fc.oneof(fc.constant(0), fc.constant(0), u16), { minLength: 8, maxLength: 8 }).map(groupsToBytes),
  fc.tuple(u16, u16).map(([a, b]) => groupsToBytes([0, 0, 0, 0, 0, 0xffff, a, b])),
  fc.tuple(u16, u16).map(([a, b]) => groupsToBytes([0, 0, 0, 0, 0, 0, a, b])),
);

/** Any RFC 4291 text form of the address: case, leading zeros, which zero run is '::', IPv4 tail. */
const textForm = (b: Uint8Array): fc.Arbitrary<string> =>
  fc
    .record({
      upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      compress: fc.nat(),
      v4tail: fc.boolean(),
    })
    .map(({ upper, pad, compress, v4tail }) => {
      const g = groupsOf(b);
      const parts = g.map((x, i) => {
        const h = x.toString(16).padStart(Math.min(4, x.toString(16).length + pad[i]!), '0');
        return upper[i] ? h.toUpperCase() : h;
      });
      const n = v4tail ? 6 : 8;
      const texts = parts.slice(0, n);
      if (v4tail) texts.push(`${b[12]}.${b[13]}.${b[14]}.${b[15]}`);
      // candidate zero runs (length >= 1) among the hex groups
      const runs: [number, number][] = [];
      for (let i = 0; i < n; i++) {
        if (g[i] !== 0) continue;
        let j = i;
        while (j < n && g[j] === 0) j++;
        for (let k = i + 1; k <= j; k++) runs.push([i, k]);
      }
      if (runs.length === 0 || compress % 3 === 0) return texts.join(':');
      const [s, e] = runs[compress % runs.length]!;
      return `${texts.slice(0, s).join(':')}::${texts.slice(e).join(':')}`;
    });

test('formatIPv6 then writeIPv6 gives back the bytes; the text is what Node accepts', () => {
  fc.assert(
    fc.property(ipv6Bytes, (b) => {
      const text = formatIPv6(b, 0);
      assert.ok(net.isIPv6(text), text);
      assert.equal(ipFamily(text), 6);
      assert.equal(text, text.toLowerCase());
      const out = new Uint8Array(16);
      assert.ok(writeIPv6(text, out, 0));
      assert.deepEqual(out, b);
      // formatting at an offset inside a bigger buffer reads the right bytes
      const big = new Uint8Array(40).fill(0xee);
      big.set(b, 7);
      assert.equal(formatIPv6(big, 7), text);
    }),
    { numRuns: NUM_RUNS },
  );
});

test('formatIPv6 is RFC 5952 canonical: agrees with net.SocketAddress and the URL serializer', () => {
  fc.assert(
    fc.property(ipv6Bytes, (b) => {
      const g = groupsOf(b);
      const text = formatIPv6(b, 0);
      const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
      // libuv's inet_ntop also writes IPv4-compatible addresses (::/96 with a nonzero 7th group)
      // with a dotted tail, a form RFC 5952 section 5 does not recommend; skip those for it.
      const compatible = g.slice(0, 6).every((x) => x === 0) && g[6] !== 0;
      if (!compatible) assert.equal(new net.SocketAddress({ address: text, family: 'ipv6' }).address, text);
      // The URL serializer never uses a dotted tail; it agrees on everything else.
      const url = new URL(`http://[${text}]/`).hostname;
      if (mapped) assert.equal(url, `[::ffff:${g[6]!.toString(16)}:${g[7]!.toString(16)}]`);
      else assert.equal(url, `[${text}]`);
    }),
    { numRuns: NUM_RUNS },
  );
});

test('writeIPv6 reads every RFC 4291 text form of an address to the same bytes', () => {
  fc.assert(
    fc.property(
      ipv6Bytes.chain((b) => fc.tuple(fc.constant(b), textForm(b))),
      ([b, text]) => {
        assert.ok(net.isIPv6(text), text);
        const out = new Uint8Array(16);
        assert.ok(writeIPv6(text, out, 0), text);
        assert.deepEqual(out, b, text);
        assert.equal(formatIPv6(out, 0), formatIPv6(b, 0));
        // a zone index is accepted and dropped
        assert.ok(writeIPv6(`${text}%eth0`, out, 0));
        assert.deepEqual(out, b);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test('writeIPv6 accepts exactly what net.isIPv6 accepts', () => {
  const chars = fc.constantFrom(...'0123456789abcdefABCDEFg:::...%'.split(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 45 }), fc.string({ maxLength: 45 })), (s) => {
      assert.equal(writeIPv6(s, new Uint8Array(16), 0), net.isIPv6(s), JSON.stringify(s));
    }),
    { numRuns: NUM_RUNS * 4 },
  );
  for (const bad of ['', ':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '::1.2.3', '::1.2.3.256', 'g::', '1:2:3:4:5:6:7']) {
    assert.equal(writeIPv6(bad, new Uint8Array(16), 0), false, bad);
  }
});

test('writeIPv4 and formatIPv4 roundtrip every address', () => {
  fc.assert(
    fc.property(fc.tuple(u8, u8, u8, u8), fc.nat({ max: 8 }), (q, offset) => {
      const b = Uint8Array.from(q);
      const text = formatIPv4(b, 0);
      assert.ok(net.isIPv4(text));
      assert.equal(ipFamily(text), 4);
      const out = new Uint8Array(12);
      assert.ok(writeIPv4(text, out, offset));
      assert.deepEqual(out.subarray(offset, offset + 4), b);
    }),
    { numRuns: NUM_RUNS },
  );
});

// Policy: writeIPv4 takes only the dotted-quad form net.isIPv4 takes: four decimal parts 0-255,
// with no leading zeros ("010.0.0.1" is 8.0.0.1 to inet_aton and 10.0.0.1 to others, so it is
// refused rather than guessed), no whitespace, no shorthand ("127.1") and no hex or octal.
test('writeIPv4 accepts exactly what net.isIPv4 accepts (leading zeros are refused)', () => {
  const chars = fc.constantFrom(...'0123456789....x '.split(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 20 }), fc.string({ maxLength: 16 })), (s) => {
      assert.equal(writeIPv4(s, new Uint8Array(4), 0), net.isIPv4(s), JSON.stringify(s));
    }),
    { numRuns: NUM_RUNS * 4 },
  );
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ', '1..2.3', '.1.2.3', '1.2.3.',
    '01.2.3.4', '1.2.3.04', '1.2.3.00', '0x1.2.3.4', '127.1', '1.2.3.4/8', '１.2.3.4']) {
    assert.equal(writeIPv4(bad, new Uint8Array(4), 0), false, bad);
  }
  for (const good of ['0.0.0.0', '255.255.255.255', '10.0.0.1', '100.64.0.0']) {
    assert.equal(writeIPv4(good, new Uint8Array(4), 0), true, good);
  }
});
