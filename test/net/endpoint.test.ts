// Endpoint text: splitEndpoint (the wire form peers publish) at its edges, and its agreement with
// formatEndpoint; parseHostPort (what users type) keeps its own, more forgiving rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEndpoint, parseHostPort, splitEndpoint } from '../../src/net/endpoint.js';

test('splitEndpoint: IPv4 and bracketed IPv6, the forms formatEndpoint writes', () => {
  assert.deepEqual(splitEndpoint('203.0.113.7:3478'), { address: '203.0.113.7', port: 3478 });
  assert.deepEqual(splitEndpoint('[2001:db8::1]:3478'), { address: '2001:db8::1', port: 3478 });
  assert.deepEqual(splitEndpoint('[::ffff:192.0.2.1]:1'), { address: '::ffff:192.0.2.1', port: 1 });
  for (const [address, port] of [['192.0.2.1', 41641], ['2001:db8::5', 65535], ['::1', 1]] as const) {
    assert.deepEqual(splitEndpoint(formatEndpoint(address, port)), { address, port }, `${address} ${port}`);
  }
});

test('splitEndpoint: the port must be 1-65535 (0 is nowhere to send)', () => {
  assert.deepEqual(splitEndpoint('192.0.2.1:65535'), { address: '192.0.2.1', port: 65535 });
  assert.deepEqual(splitEndpoint('192.0.2.1:1'), { address: '192.0.2.1', port: 1 });
  assert.equal(splitEndpoint('192.0.2.1:0'), null);
  assert.equal(splitEndpoint('[2001:db8::1]:0'), null);
  assert.equal(splitEndpoint('192.0.2.1:65536'), null);
  assert.equal(splitEndpoint('[2001:db8::1]:65536'), null);
  assert.equal(splitEndpoint('192.0.2.1:99999999'), null);
  assert.equal(splitEndpoint('192.0.2.1:-1'), null);
  assert.equal(splitEndpoint('192.0.2.1:12a'), null);
});

test('splitEndpoint: a missing port, or an IPv6 address without brackets, is not an endpoint', () => {
  for (const text of ['192.0.2.1', '192.0.2.1:', '[2001:db8::1]', '[2001:db8::1]:', '2001:db8::1', '2001:db8::1:80', '::1', ':80', '']) {
    assert.equal(splitEndpoint(text), null, JSON.stringify(text));
  }
});

test('splitEndpoint: only literal addresses, exactly as written', () => {
  for (const text of ['example.com:80', 'localhost:3478', '[192.0.2.1]:80', '[example.com]:80', '999.1.1.1:80', ' 192.0.2.1:80', '192.0.2.1:80 ', '[2001:db8::1:80']) {
    assert.equal(splitEndpoint(text), null, JSON.stringify(text));
  }
});

test('parseHostPort still takes host names, defaults and bare IPv6 (user input)', () => {
  assert.deepEqual(parseHostPort('example.com:80'), { host: 'example.com', port: 80 });
  assert.deepEqual(parseHostPort('2001:db8::1', 3478), { host: '2001:db8::1', port: 3478 });
  assert.deepEqual(parseHostPort('192.0.2.1:0'), { host: '192.0.2.1', port: 0 });
  assert.throws(() => parseHostPort('192.0.2.1:65536'), /larger than 65535/);
  assert.throws(() => parseHostPort('example.com'), /has no port/);
});
