import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnicastAddress, isUsableEndpoint } from '../../src/net/unicast.js';

test('unicast addresses: peers, private and loopback pass; unspecified, multicast and broadcast do not', () => {
  for (const a of ['203.0.113.7', '10.0.0.1', '127.0.0.1', '100.64.0.1', '223.255.255.255', '2001:db8::1', '::1', 'fe80::1', '::ffff:192.0.2.1']) {
    assert.equal(isUnicastAddress(a), true, a);
  }
  for (const a of ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255', '::', 'ff02::1', '::ffff:224.0.0.1', '999.1.1.1', 'example.com', '']) {
    assert.equal(isUnicastAddress(a), false, a);
  }
});

test('usable endpoints: a unicast IP and a port 1-65535, as peers publish them', () => {
  for (const e of ['203.0.113.7:41641', '[2001:db8::1]:1', '127.0.0.1:65535']) assert.equal(isUsableEndpoint(e), true, e);
  for (const e of ['203.0.113.7:0', '203.0.113.7:65536', '203.0.113.7', '2001:db8::1:80', '[::]:80', '255.255.255.255:53', 'host:80', ' 1.2.3.4:5']) {
    assert.equal(isUsableEndpoint(e), false, e);
  }
});
