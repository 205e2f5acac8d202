// NAT-PMP messages against RFC 6886's layouts (sections 3.2 and 3.3): byte by byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNatPmpResponse, encodeNatPmpExternalAddressRequest, encodeNatPmpMapRequest, natpmpResultText } from '../../src/portmap/natpmp.js';

test('external address request: version 0, opcode 0, two bytes (RFC 6886 section 3.2)', () => {
  assert.deepEqual([...encodeNatPmpExternalAddressRequest()], [0, 0]);
});

test('UDP map request: version, opcode 1, reserved, internal port, suggested external port, lifetime (section 3.3)', () => {
  const b = encodeNatPmpMapRequest({ internalPort: 0x1234, suggestedExternalPort: 0x5678, lifetimeS: 7200 });
  assert.deepEqual([...b], [0, 1, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x1c, 0x20]);
  // A delete is the same request with lifetime 0 (section 3.4).
  assert.deepEqual([...encodeNatPmpMapRequest({ internalPort: 1, suggestedExternalPort: 0, lifetimeS: 0 }).subarray(8)], [0, 0, 0, 0]);
});

test('external address response: opcode 128, result, epoch, address', () => {
  const r = decodeNatPmpResponse(Uint8Array.of(0, 128, 0, 0, 0, 0, 0x01, 0x00, 203, 0, 113, 7));
  assert.deepEqual(r, { op: 'external-address', result: 0, epochS: 256, externalAddress: '203.0.113.7' });
});

test('UDP map response: opcode 129, internal port, mapped port, lifetime granted', () => {
  const r = decodeNatPmpResponse(Uint8Array.of(0, 129, 0, 0, 0, 0, 0, 9, 0x0f, 0xa0, 0x0f, 0xa1, 0, 0, 0x0e, 0x10));
  assert.deepEqual(r, { op: 'map-udp', result: 0, epochS: 9, internalPort: 4000, externalPort: 4001, lifetimeS: 3600 });
});

test('an error may come as the 8-byte header alone; the result code is named', () => {
  const r = decodeNatPmpResponse(Uint8Array.of(0, 129, 0, 3, 0, 0, 0, 1));
  assert.equal(r?.result, 3);
  assert.match(natpmpResultText(3), /network failure/);
  assert.match(natpmpResultText(99), /99/);
});

test('what is not a NAT-PMP response is refused, not misread', () => {
  assert.equal(decodeNatPmpResponse(Uint8Array.of(0, 128, 0, 0)), null, 'short');
  assert.equal(decodeNatPmpResponse(Uint8Array.of(2, 128, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4)), null, 'PCP version');
  assert.equal(decodeNatPmpResponse(Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), null, 'a request');
  assert.equal(decodeNatPmpResponse(Uint8Array.of(0, 128, 0, 0, 0, 0, 0, 0)), null, 'success without the address');
  assert.equal(decodeNatPmpResponse(Uint8Array.of(0, 129, 0, 0, 0, 0, 0, 0, 0, 1)), null, 'success without the mapping');
});
