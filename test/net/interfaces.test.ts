// Interface addresses: one reader, filtered by family and internal-ness, against os itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { interfaceAddresses, interfaceFingerprint, interfaceIPv4Addresses } from '../../src/net/interfaces.js';

const all = (): { address: string; family: string; internal: boolean }[] => Object.values(networkInterfaces()).flatMap((l) => l ?? []);

test('interfaceAddresses: every address by default, loopback included', () => {
  assert.deepEqual(interfaceAddresses(), all().map((i) => i.address));
  assert.ok(interfaceAddresses().includes('127.0.0.1'), 'loopback is listed');
});

test('interfaceIPv4Addresses: IPv4 only, loopback left out (the candidates a peer might reach)', () => {
  const v4 = interfaceIPv4Addresses();
  assert.deepEqual(v4, all().filter((i) => i.family === 'IPv4' && !i.internal).map((i) => i.address));
  assert.ok(!v4.includes('127.0.0.1'));
  assert.ok(v4.every((a) => !a.includes(':')));
  assert.deepEqual(interfaceAddresses({ family: 'IPv6' }), all().filter((i) => i.family === 'IPv6').map((i) => i.address));
});

test('interfaceFingerprint: sorted, so the order the OS lists interfaces in does not count', () => {
  assert.equal(interfaceFingerprint(), interfaceAddresses().sort().join(','));
  assert.equal(interfaceFingerprint(), interfaceFingerprint());
});
