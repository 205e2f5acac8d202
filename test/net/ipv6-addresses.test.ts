// IPv6 address handling for candidates and the dual-stack socket: which interface addresses are
// offered, which families a socket carries, which STUN servers are worth asking, and that
// disco carries IPv6 endpoints intact. Pure; nothing is sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCandidateIPv6 } from '../../src/net/ip.js';
import { interfaceCandidateAddresses, interfaceIPv4Addresses, interfaceAddresses } from '../../src/net/interfaces.js';
import { familiesOf, reachableStunServers, socketFamilies } from '../../src/magicsock/dual-stack.js';
import { Candidates, mergeEndpoints } from '../../src/magicsock/candidates.js';
import { resolveEndpointFamilies } from '../../src/net/resolve.js';
import { canonicalEndpoint } from '../../src/net/endpoint.js';
import { decodeDisco, encodeDisco } from '../../src/disco/messages.js';
import { aimCallMeMaybe, mayAim } from '../../src/magicsock/probe-aim.js';

test('isCandidateIPv6: global unicast and unique-local only', () => {
  for (const a of ['2001:db8:1::2', '2a00:1450:4001:81c::200e', 'fd12:3456::1', 'fc00::1']) assert.equal(isCandidateIPv6(a), true, a);
  for (const a of ['fe80::1', 'fe80::1%eth0', '::1', '::', '::ffff:192.0.2.1', 'ff02::1', '192.0.2.1', 'not an address', '3fff::1%2']) {
    assert.equal(isCandidateIPv6(a), false, a);
  }
});

test('interfaceCandidateAddresses: the IPv4 candidates, then only global and unique-local IPv6', () => {
  const got = interfaceCandidateAddresses();
  const v4 = interfaceIPv4Addresses();
  assert.deepEqual(got.slice(0, v4.length), v4);
  const v6 = got.slice(v4.length);
  assert.ok(v6.every(isCandidateIPv6), JSON.stringify(v6));
  assert.deepEqual(v6, interfaceAddresses({ family: 'IPv6', externalOnly: true }).filter(isCandidateIPv6));
  assert.ok(!got.includes('::1') && !got.includes('127.0.0.1'));
});

test('socketFamilies: [::] carries both, an IPv4 or a specific IPv6 address one', () => {
  assert.deepEqual(socketFamilies('::'), [4, 6]);
  assert.deepEqual(socketFamilies('0.0.0.0'), [4]);
  assert.deepEqual(socketFamilies('127.0.0.1'), [4]);
  assert.deepEqual(socketFamilies('::1'), [6]);
  assert.deepEqual(socketFamilies('2001:db8:1::2'), [6]);
});

test('familiesOf: the families present, in order 4, 6', () => {
  assert.deepEqual(familiesOf([]), []);
  assert.deepEqual(familiesOf(['2001:db8::1', '192.0.2.1']), [4, 6]);
  assert.deepEqual(familiesOf(['::1']), [6]);
  assert.deepEqual(familiesOf(['nonsense']), []);
});

test('reachableStunServers: a family the socket carries and the machine has an address in; loopback always', () => {
  const v4 = { address: '203.0.113.10', port: 3478 };
  const v6 = { address: '2001:db8::10', port: 3478 };
  const lo6 = { address: '::1', port: 3478 };
  assert.deepEqual(reachableStunServers([v4, v6], [4, 6], [4, 6]), [v4, v6]);
  assert.deepEqual(reachableStunServers([v4, v6], [4, 6], [6]), [v6], 'an IPv6-only machine does not wait for an IPv4 server');
  assert.deepEqual(reachableStunServers([v4, v6], [4, 6], [4]), [v4]);
  assert.deepEqual(reachableStunServers([v4, v6, lo6], [4], [4, 6]), [v4], 'an IPv4 socket cannot send to IPv6');
  assert.deepEqual(reachableStunServers([lo6], [4, 6], [4]), [lo6], 'loopback needs no interface address');
});

test('Candidates: IPv6 interface addresses with the socket port, bracketed; only families the socket carries', () => {
  const c = new Candidates(() => ['192.168.1.2', '2001:db8:1::2']);
  assert.deepEqual(c.list(4000), ['192.168.1.2:4000', '[2001:db8:1::2]:4000']);
  assert.deepEqual(c.list(4000, [4]), ['192.168.1.2:4000']);
  assert.deepEqual(c.list(4000, [6]), ['[2001:db8:1::2]:4000']);
  assert.deepEqual(c.localFamilies(), [4, 6]);
  // A STUN result over IPv6 that equals the interface address (no NAT66) is listed once.
  assert.deepEqual(mergeEndpoints(['2001:db8:1::2'], 4000, ['[2001:db8:1::2]:4000', '203.0.113.2:4000'], []), ['[2001:db8:1::2]:4000', '203.0.113.2:4000']);
});

test('resolveEndpointFamilies: a literal is itself, with its family', async () => {
  assert.deepEqual(await resolveEndpointFamilies('[2001:db8::10]:3480', 3478), [{ address: '2001:db8::10', port: 3480, family: 6 }]);
  assert.deepEqual(await resolveEndpointFamilies('203.0.113.10', 3478), [{ address: '203.0.113.10', port: 3478, family: 4 }]);
  const lo = await resolveEndpointFamilies('localhost:3478', 3478);
  assert.ok(lo.length >= 1 && lo.every((e) => e.port === 3478 && (e.address === '127.0.0.1' || e.address === '::1')), JSON.stringify(lo));
});

test('disco: call-me-maybe and pong carry IPv6 endpoints intact; aiming accepts published IPv6 endpoints only', () => {
  const endpoints = [{ address: '2001:db8:1::2', port: 4000 }, { address: '203.0.113.2', port: 4001 }];
  assert.deepEqual(decodeDisco(encodeDisco({ type: 'call-me-maybe', endpoints })), { type: 'call-me-maybe', endpoints });
  const txid = new Uint8Array(12).fill(7);
  const pong = decodeDisco(encodeDisco({ type: 'pong', txid, src: { address: '2001:db8:2::2', port: 5000 } }));
  assert.deepEqual(pong && pong.type === 'pong' ? pong.src : null, { address: '2001:db8:2::2', port: 5000 });
  const aim = { published: new Set(['[2001:db8:1::2]:4000']), observed: new Set<string>(), vouchedIp: '203.0.113.2' };
  assert.equal(mayAim('[2001:db8:1::2]:4000', aim), true);
  assert.equal(mayAim('[2001:db8:1::3]:4000', aim), false, 'an unpublished IPv6 address of nobody we know');
  assert.deepEqual(aimCallMeMaybe(['[2001:db8:1::2]:4000', '[2001:db8:1::9]:4000'], aim), ['[2001:db8:1::2]:4000']);
});

test('canonicalEndpoint: one text per IPv6 endpoint, the form packets arrive from; anything else unchanged', () => {
  assert.equal(canonicalEndpoint('[2001:DB8:0:0::1]:4000'), '[2001:db8::1]:4000');
  assert.equal(canonicalEndpoint('[2001:db8::1]:4000'), '[2001:db8::1]:4000');
  assert.equal(canonicalEndpoint('[::FFFF:192.0.2.1]:4000'), '[::ffff:192.0.2.1]:4000');
  assert.equal(canonicalEndpoint('192.0.2.1:4000'), '192.0.2.1:4000');
  assert.equal(canonicalEndpoint('not an endpoint'), 'not an endpoint');
});
