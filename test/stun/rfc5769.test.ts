// RFC 5769's vectors, decoded and checked, and re-encoded byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkFingerprint,
  checkIntegrity,
  decodeMessage,
  encodeMessage,
  longTermKey,
  METHOD_BINDING,
  readAttributes,
  shortTermKey,
  type Attribute,
} from '../../src/stun/index.js';
import * as v from './vectors.js';

const tid = (b: Buffer): Buffer => b.subarray(8, 20);

test('2.1 sample request: decodes, fingerprint and short-term integrity check', () => {
  const m = decodeMessage(v.SAMPLE_REQUEST);
  assert.equal(m.method, METHOD_BINDING);
  assert.equal(m.cls, 'request');
  assert.deepEqual(Buffer.from(m.transactionId), Buffer.from('b7e7a701bc34d686fa87dfae', 'hex'));
  const attrs = readAttributes(m);
  assert.deepEqual(attrs.slice(0, 4), [
    { type: 'SOFTWARE', value: 'STUN test client' },
    { type: 'PRIORITY', value: 0x6e0001ff },
    { type: 'ICE-CONTROLLED', tieBreaker: 0x932ff9b151263b36n },
    { type: 'USERNAME', value: 'evtj:h6vY' },
  ]);
  assert.equal(checkFingerprint(m), 'ok');
  assert.equal(checkIntegrity(m, shortTermKey(v.SHORT_TERM_PASSWORD)), 'ok');
  assert.equal(checkIntegrity(m, shortTermKey('not the password')), 'mismatch');
});

test('2.1 sample request: encodes byte for byte (padding 0x20 as in the RFC)', () => {
  const attributes: Attribute[] = [
    { type: 'SOFTWARE', value: 'STUN test client' },
    { type: 'PRIORITY', value: 0x6e0001ff },
    { type: 'ICE-CONTROLLED', tieBreaker: 0x932ff9b151263b36n },
    { type: 'USERNAME', value: 'evtj:h6vY' },
  ];
  const out = encodeMessage(
    { method: METHOD_BINDING, cls: 'request', transactionId: tid(v.SAMPLE_REQUEST), attributes },
    { integrityKey: shortTermKey(v.SHORT_TERM_PASSWORD), fingerprint: true, padByte: 0x20 },
  );
  assert.equal(out.toString('hex'), v.SAMPLE_REQUEST.toString('hex'));
});

for (const [name, bytes, family, address] of [
  ['2.2 IPv4 response', v.SAMPLE_IPV4_RESPONSE, 4, '192.0.2.1'],
  ['2.3 IPv6 response', v.SAMPLE_IPV6_RESPONSE, 6, '2001:db8:1234:5678:11:2233:4455:6677'],
] as const) {
  test(`${name}: decodes to the documented address; integrity and fingerprint check`, () => {
    const m = decodeMessage(bytes);
    assert.equal(m.cls, 'success');
    const attrs = readAttributes(m);
    assert.deepEqual(attrs[0], { type: 'SOFTWARE', value: 'test vector' });
    assert.deepEqual(attrs[1], { type: 'XOR-MAPPED-ADDRESS', family, address, port: 32853 });
    assert.equal(checkFingerprint(m), 'ok');
    assert.equal(checkIntegrity(m, shortTermKey(v.SHORT_TERM_PASSWORD)), 'ok');
  });

  test(`${name}: encodes byte for byte`, () => {
    const out = encodeMessage(
      {
        method: METHOD_BINDING,
        cls: 'success',
        transactionId: tid(bytes),
        attributes: [
          { type: 'SOFTWARE', value: 'test vector' },
          { type: 'XOR-MAPPED-ADDRESS', family, address, port: 32853 },
        ],
      },
      { integrityKey: shortTermKey(v.SHORT_TERM_PASSWORD), fingerprint: true, padByte: 0x20 },
    );
    assert.equal(out.toString('hex'), bytes.toString('hex'));
  });
}

test('2.4 long-term request: decodes; MD5(username:realm:password) key checks', () => {
  const m = decodeMessage(v.SAMPLE_LONG_TERM_REQUEST);
  assert.deepEqual(readAttributes(m).slice(0, 3), [
    { type: 'USERNAME', value: v.LONG_TERM_USERNAME },
    { type: 'NONCE', value: v.LONG_TERM_NONCE },
    { type: 'REALM', value: v.LONG_TERM_REALM },
  ]);
  assert.equal(checkFingerprint(m), 'missing');
  const key = longTermKey(v.LONG_TERM_USERNAME, v.LONG_TERM_REALM, v.LONG_TERM_PASSWORD);
  assert.equal(checkIntegrity(m, key), 'ok');
  assert.equal(checkIntegrity(m, longTermKey(v.LONG_TERM_USERNAME, v.LONG_TERM_REALM, 'TheMatrix')), 'mismatch');
});

test('2.4 long-term request: encodes byte for byte', () => {
  const out = encodeMessage(
    {
      method: METHOD_BINDING,
      cls: 'request',
      transactionId: tid(v.SAMPLE_LONG_TERM_REQUEST),
      attributes: [
        { type: 'USERNAME', value: v.LONG_TERM_USERNAME },
        { type: 'NONCE', value: v.LONG_TERM_NONCE },
        { type: 'REALM', value: v.LONG_TERM_REALM },
      ],
    },
    { integrityKey: longTermKey(v.LONG_TERM_USERNAME, v.LONG_TERM_REALM, v.LONG_TERM_PASSWORD) },
  );
  assert.equal(out.toString('hex'), v.SAMPLE_LONG_TERM_REQUEST.toString('hex'));
});

test('a changed byte breaks the fingerprint and the integrity, both computed over the bytes received', () => {
  const bytes = Buffer.from(v.SAMPLE_REQUEST);
  bytes[30]! ^= 1; // inside SOFTWARE
  const m = decodeMessage(bytes);
  assert.equal(checkFingerprint(m), 'mismatch');
  assert.equal(checkIntegrity(m, shortTermKey(v.SHORT_TERM_PASSWORD)), 'mismatch');
});
