// The diagnosis with port mapping: a trusted mapping makes direct connections likely even behind
// a hard NAT; an untrusted one is named as such; a hard NAT without one is told what would help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose } from '../../src/netcheck/diagnosis.js';
import type { NetcheckReport } from '../../src/netcheck/report.js';
import type { PortMappingReport } from '../../src/portmap/report.js';

const hard: NetcheckReport = {
  udp: true,
  ipv4: true,
  ipv6: false,
  globalV4: '203.0.113.2:40000',
  globalV6: null,
  publicAddresses: ['203.0.113.2:40000', '203.0.113.2:40001'],
  mappingVariesByDestIP: true,
  mapping: 'address-and-port-dependent',
  filtering: 'address-and-port-dependent',
  hairpinning: null,
  behindNat: true,
  preferredServer: '203.0.113.10:3478',
  local: '0.0.0.0:4000',
  servers: [{ address: '203.0.113.10:3478', latencyMs: 1, mapped: '203.0.113.2:40000', error: null, otherAddress: null }],
  portMapping: null,
  durationMs: 10,
};

const no = { available: false as const, reason: 'no answer' };
const mapped = (over: Partial<PortMappingReport>): PortMappingReport => ({
  gateway: '192.168.1.1',
  pcp: { available: true, externalAddress: '203.0.113.2' },
  natpmp: no,
  upnp: no,
  mapping: { protocol: 'pcp', external: '203.0.113.2:4000', lifetimeS: 7200 },
  trusted: true,
  untrustedReason: null,
  ...over,
});

test('a trusted mapping: direct connections likely, even with peers behind hard NATs', () => {
  const d = diagnose({ ...hard, portMapping: mapped({}) });
  assert.match(d.verdict, /likely \(the router maps a port/);
  assert.ok(d.findings.some((f) => /Your router opened a port \(PCP, 203\.0\.113\.2:4000\): direct connections are possible even with peers behind hard NATs/.test(f)));
  assert.ok(!d.findings.some((f) => /To fix: forward a fixed UDP port/.test(f)), 'no advice to do what the router already did');
});

test('an untrusted mapping is named as such and changes nothing else', () => {
  const d = diagnose({ ...hard, portMapping: mapped({ trusted: false, untrustedReason: 'the router\'s external address 100.64.0.2 is private' }) });
  assert.match(d.verdict, /only with peers behind easy NATs/);
  assert.ok(d.findings.some((f) => /cannot be trusted: the router's external address 100\.64\.0\.2 is private/.test(f)));
});

test('a hard NAT whose router maps nothing is told what would help; port mapping off says nothing', () => {
  const none: PortMappingReport = { gateway: '192.168.1.1', pcp: no, natpmp: no, upnp: no, mapping: null, trusted: null, untrustedReason: null };
  assert.ok(diagnose({ ...hard, portMapping: none }).findings.some((f) => /maps no port \(PCP, NAT-PMP and UPnP IGD did not\)/.test(f)));
  assert.ok(!diagnose(hard).findings.some((f) => /maps no port/.test(f)));
});
