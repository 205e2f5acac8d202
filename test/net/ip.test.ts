// isPrivateAddress: the LAN ranges a path is preferred over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPrivateAddress } from '../../src/net/ip.js';

test('isPrivateAddress: RFC 1918, RFC 6598 shared space, link-local and IPv6 ULA / link-local', () => {
  for (const a of ['10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.255', '169.254.1.1', 'fd00::1', 'FC00::1', 'fe80::1']) {
    assert.equal(isPrivateAddress(a), true, a);
  }
  for (const a of ['8.8.8.8', '172.15.0.1', '172.32.0.1', '192.169.0.1', '100.63.0.1', '100.128.0.1', '203.0.113.7', '2001:db8::1', 'fe90::1']) {
    assert.equal(isPrivateAddress(a), false, a);
  }
});
