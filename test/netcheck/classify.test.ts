import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFiltering, classifyMapping, isHardMapping, mappingVariesByDestIP, diagnose, type NetcheckReport } from '../../src/netcheck/index.js';

test('RFC 5780 mapping classification from tests I, II, III', () => {
  assert.equal(classifyMapping('1.2.3.4:5', '1.2.3.4:5', null), 'endpoint-independent');
  assert.equal(classifyMapping('1.2.3.4:5', '1.2.3.4:6', '1.2.3.4:6'), 'address-dependent');
  assert.equal(classifyMapping('1.2.3.4:5', '1.2.3.4:6', '1.2.3.4:7'), 'address-and-port-dependent');
  assert.equal(classifyMapping('1.2.3.4:5', null, null), 'unknown');
  assert.equal(classifyMapping('1.2.3.4:5', '1.2.3.4:6', null), 'unknown');
  assert.equal(classifyMapping(null, '1.2.3.4:6', '1.2.3.4:6'), 'unknown');
});

test('RFC 5780 filtering classification', () => {
  assert.equal(classifyFiltering(true, null), 'endpoint-independent');
  assert.equal(classifyFiltering(false, true), 'address-dependent');
  assert.equal(classifyFiltering(false, false), 'address-and-port-dependent');
  assert.equal(classifyFiltering(null, true), 'unknown');
  assert.equal(classifyFiltering(false, null), 'unknown');
});

test('mappingVariesByDestIP needs two server IPs; two ports of one IP do not count', () => {
  assert.equal(mappingVariesByDestIP([{ serverIp: 'a', mapped: 'x' }]), null);
  assert.equal(mappingVariesByDestIP([{ serverIp: 'a', mapped: 'x' }, { serverIp: 'a', mapped: 'y' }]), null);
  assert.equal(mappingVariesByDestIP([{ serverIp: 'a', mapped: 'x' }, { serverIp: 'b', mapped: 'x' }]), false);
  assert.equal(mappingVariesByDestIP([{ serverIp: 'a', mapped: 'x' }, { serverIp: 'b', mapped: 'y' }]), true);
});

test('mappingVariesByDestIP compares servers of one family: an IPv4 and an IPv6 server always differ', () => {
  const v4 = { serverIp: '203.0.113.10', mapped: '198.51.100.7:4000' };
  const v6 = { serverIp: '2001:db8::10', mapped: '[2001:db8:1::2]:4000' };
  assert.equal(mappingVariesByDestIP([v4, v6]), null);
  assert.equal(mappingVariesByDestIP([v4, v6, { serverIp: '203.0.113.11', mapped: '198.51.100.7:4000' }]), false);
  assert.equal(mappingVariesByDestIP([v4, v6, { serverIp: '203.0.113.11', mapped: '198.51.100.7:4001' }]), true);
});

const base: NetcheckReport = {
  udp: true,
  ipv4: true,
  ipv6: false,
  globalV4: '203.0.113.2:40000',
  globalV6: null,
  publicAddresses: ['203.0.113.2:40000'],
  mappingVariesByDestIP: false,
  mapping: 'endpoint-independent',
  filtering: 'address-and-port-dependent',
  hairpinning: true,
  behindNat: true,
  preferredServer: '203.0.113.10:3478',
  local: '0.0.0.0:40000',
  servers: [{ address: '203.0.113.10:3478', latencyMs: 1, mapped: '203.0.113.2:40000', error: null, otherAddress: '203.0.113.11:3479' }],
  portMapping: null,
  durationMs: 10,
};

const silent = (address: string) => ({ address, latencyMs: null, mapped: null, error: 'timeout', otherAddress: null });
const noUdp = { ...base, udp: false, ipv4: false, globalV4: null, mapping: 'unknown', filtering: 'unknown', hairpinning: null, behindNat: null } as const;

test('diagnosis: blocked UDP says so, says the relay carries traffic, and says what to do', () => {
  // The server answers over TCP: it is up, so UDP is what is blocked.
  const d = diagnose({ ...noUdp, servers: [silent('203.0.113.10:3478')] }, { stunOverTcp: new Map([['203.0.113.10:3478', true]]) });
  assert.match(d.verdict, /impossible.*UDP is blocked/);
  assert.ok(d.findings.some((f) => /answered over TCP but not over UDP/.test(f)));
  assert.ok(d.findings.some((f) => /relay/.test(f)));
  assert.ok(d.findings.some((f) => /allow outbound UDP/.test(f)));
  // Two servers, both silent: they are unlikely to be both down.
  const two = diagnose({ ...noUdp, servers: [silent('203.0.113.10:3478'), silent('198.51.100.20:3478')] });
  assert.match(two.verdict, /UDP is blocked/);
  assert.ok(two.findings.some((f) => /unlikely to be all down/.test(f)));
});

test('diagnosis: one silent STUN server is not called blocked UDP: it may be down', () => {
  for (const context of [{}, { stunOverTcp: new Map([['203.0.113.10:3478', false]]) }]) {
    const d = diagnose({ ...noUdp, servers: [silent('203.0.113.10:3478')] }, context);
    assert.match(d.verdict, /unknown \(the only STUN server did not answer\)/);
    assert.doesNotMatch(d.verdict, /UDP is blocked/);
    assert.ok(d.findings.some((f) => /may be down/.test(f) && /203\.0\.113\.10:3478/.test(f)));
    assert.ok(d.findings.some((f) => /add a second STUN server/.test(f)));
  }
});

test('diagnosis: a hard NAT needs an easy NAT on the other side; no hairpin suggests an internal STUN server', () => {
  const d = diagnose({ ...base, mapping: 'address-and-port-dependent', mappingVariesByDestIP: true, hairpinning: false });
  assert.match(d.verdict, /only with peers behind easy NATs/);
  assert.ok(d.findings.some((f) => /needs the other side to have an easy NAT/.test(f) && /forward a fixed UDP port/.test(f)));
  assert.ok(d.findings.some((f) => /internal STUN server/.test(f)));
});

test('diagnosis: an easy NAT is likely to connect; disabled STUN is said plainly', () => {
  assert.equal(diagnose(base).verdict, 'direct connections: likely');
  assert.match(diagnose({ ...base, servers: [] }).verdict, /STUN is disabled/);
});

test('isHardMapping: address-dependent or address-and-port-dependent mapping, or ports that vary by server IP', () => {
  assert.equal(isHardMapping({ mapping: 'address-dependent' }), true);
  assert.equal(isHardMapping({ mapping: 'address-and-port-dependent' }), true);
  assert.equal(isHardMapping({ mapping: 'unknown', mappingVariesByDestIP: true }), true);
  assert.equal(isHardMapping({ mapping: 'endpoint-independent' }), false);
  assert.equal(isHardMapping({ mapping: 'unknown', mappingVariesByDestIP: null }), false);
  assert.equal(isHardMapping({ mapping: 'unknown', mappingVariesByDestIP: false }), false);
  assert.equal(isHardMapping({}), false, 'a summary that says nothing is not hard');
  assert.equal(isHardMapping(undefined), false, 'no summary at all is not hard');
});

test('diagnosis: IPv6 next to a hard IPv4 NAT makes direct paths likely with IPv6 peers', () => {
  const v6 = { ...base, ipv6: true, globalV6: '[2001:db8:1::2]:4000', mapping: 'address-and-port-dependent' as const, mappingVariesByDestIP: true };
  const d = diagnose(v6);
  assert.equal(d.verdict, 'direct connections: likely with peers that have IPv6; over IPv4 only with peers behind easy NATs');
  assert.ok(d.findings.some((f) => f.startsWith('IPv6 works here ([2001:db8:1::2]:4000)')));
});

test('diagnosis: an IPv6 server that does not answer says there is no IPv6; an IPv6-only network says IPv4 peers go through the relay', () => {
  const silent6 = { address: '[2001:db8::10]:3478', latencyMs: null, mapped: null, error: 'timeout', otherAddress: null };
  const d = diagnose({ ...base, servers: [...base.servers, silent6] });
  assert.ok(d.findings.some((f) => /No IPv6 STUN server answered \(\[2001:db8::10\]:3478: timeout\)/.test(f)), JSON.stringify(d.findings));
  const answered6 = { address: '[2001:db8::10]:3478', latencyMs: 2, mapped: '[2001:db8:1::2]:4000', error: null, otherAddress: null };
  const silent4 = { address: '203.0.113.10:3478', latencyMs: null, mapped: null, error: 'timeout', otherAddress: null };
  const only6 = diagnose({ ...base, ipv4: false, globalV4: null, ipv6: true, globalV6: '[2001:db8:1::2]:4000', servers: [silent4, answered6] });
  assert.match(only6.verdict, /peers with only IPv4 are reached through the relay/);
  assert.ok(only6.findings.some((f) => /No IPv4 STUN server answered \(203\.0\.113\.10:3478\)/.test(f)));
});
