// PCP messages against RFC 6887's layouts (sections 7.1, 7.2, 11.1): byte by byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePcpResponse, encodePcpAnnounce, encodePcpMap, pcpResultText } from '../../src/portmap/pcp.js';

const mappedV4 = (a: number[]): number[] => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a];

test('ANNOUNCE request: the 24-byte header, version 2, opcode 0, lifetime 0, client IP as IPv4-mapped IPv6', () => {
  const b = encodePcpAnnounce('192.168.1.2');
  assert.equal(b.length, 24);
  assert.deepEqual([...b], [2, 0, 0, 0, 0, 0, 0, 0, ...mappedV4([192, 168, 1, 2])]);
});

test('MAP request: header then nonce, protocol 17, reserved, internal port, suggested port and address (section 11.1)', () => {
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
  const b = encodePcpMap({ clientIp: '10.0.0.5', nonce, internalPort: 4000, suggestedExternalPort: 4001, suggestedExternalIp: '0.0.0.0', lifetimeS: 7200 });
  assert.equal(b.length, 60);
  assert.deepEqual([...b.subarray(0, 8)], [2, 1, 0, 0, 0, 0, 0x1c, 0x20]);
  assert.deepEqual([...b.subarray(8, 24)], mappedV4([10, 0, 0, 5]));
  assert.deepEqual([...b.subarray(24, 36)], [...nonce]);
  assert.deepEqual([...b.subarray(36, 40)], [17, 0, 0, 0]);
  assert.deepEqual([...b.subarray(40, 44)], [0x0f, 0xa0, 0x0f, 0xa1]);
  // "Any address" for IPv4 is ::ffff:0.0.0.0 (section 11.1).
  assert.deepEqual([...b.subarray(44, 60)], mappedV4([0, 0, 0, 0]));
  assert.throws(() => encodePcpMap({ clientIp: '10.0.0.5', nonce: new Uint8Array(4), internalPort: 1, suggestedExternalPort: 0, suggestedExternalIp: '0.0.0.0', lifetimeS: 1 }));
});

function mapResponse(o: { result?: number; lifetime?: number; epoch?: number; address?: number[] } = {}): Uint8Array {
  const b = Buffer.alloc(60);
  b[0] = 2;
  b[1] = 0x80 | 1;
  b[3] = o.result ?? 0;
  b.writeUInt32BE(o.lifetime ?? 7200, 4);
  b.writeUInt32BE(o.epoch ?? 42, 8);
  b.set(Uint8Array.from({ length: 12 }, (_, i) => i + 1), 24);
  b[36] = 17;
  b.writeUInt16BE(4000, 40);
  b.writeUInt16BE(50000, 42);
  b.set(o.address ?? mappedV4([203, 0, 113, 2]), 44);
  return b;
}

test('MAP response: R bit, result, lifetime, epoch, and the assigned port and address', () => {
  const r = decodePcpResponse(mapResponse());
  assert.ok(r && r.kind === 'response');
  assert.equal(r.opcode, 1);
  assert.equal(r.result, 0);
  assert.equal(r.lifetimeS, 7200);
  assert.equal(r.epochS, 42);
  assert.equal(r.map?.internalPort, 4000);
  assert.equal(r.map?.externalPort, 50000);
  assert.equal(r.map?.externalAddress, '203.0.113.2');
  assert.deepEqual([...(r.map?.nonce ?? [])], Array.from({ length: 12 }, (_, i) => i + 1));
  const v6 = decodePcpResponse(mapResponse({ address: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] }));
  assert.equal(v6?.kind === 'response' ? v6.map?.externalAddress : null, '2001:db8::1');
});

test('an error result decodes with its code, and the code is named', () => {
  const r = decodePcpResponse(mapResponse({ result: 7 }));
  assert.equal(r?.kind === 'response' ? r.result : null, 7);
  assert.match(pcpResultText(7), /network failure/);
});

test('a NAT-PMP-only server answers a PCP request with version 0: "unsupported version" (section 9)', () => {
  assert.deepEqual(decodePcpResponse(Uint8Array.of(0, 129, 0, 1, 0, 0, 0, 5)), { kind: 'unsupported-version', version: 0 });
});

test('what is not a PCP response is refused, not misread', () => {
  assert.equal(decodePcpResponse(mapResponse().subarray(0, 20)), null, 'shorter than the header');
  assert.equal(decodePcpResponse(Buffer.concat([mapResponse(), Buffer.alloc(2)])), null, 'not a multiple of 4');
  assert.equal(decodePcpResponse(Buffer.alloc(1104, 2)), null, 'over 1100 bytes');
  const req = Buffer.from(mapResponse());
  req[1] = 1;
  assert.equal(decodePcpResponse(req), null, 'a request (no R bit)');
  assert.equal(decodePcpResponse(mapResponse().subarray(0, 24)), null, 'a successful MAP without its body');
  const v3 = Buffer.from(mapResponse());
  v3[0] = 3;
  assert.equal(decodePcpResponse(v3), null, 'a future version');
});
