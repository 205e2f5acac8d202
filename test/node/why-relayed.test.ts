// whyRelayed: every branch and its exact sentence, in priority order; summarize(): what of a
// netcheck report peers get to see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { whyRelayed, type RelayContext } from '../../src/node/why-relayed.js';
import { summarize } from '../../src/node/peer-node.js';
import type { NetcheckReport } from '../../src/netcheck/report.js';
import type { NetcheckSummary } from '../../src/coordination/protocol.js';

const easy: NetcheckSummary = { udp: true, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hairpinning: true, globalV4: '203.0.113.1:4000' };
const easyPeer: NetcheckSummary = { ...easy, globalV4: '198.51.100.1:5000' };
const hard: NetcheckSummary = { udp: true, mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', hairpinning: false, globalV4: '203.0.113.1:4001' };

function ctx(over: Partial<RelayContext> = {}): RelayContext {
  return { disabledHere: false, blockedByServer: false, hereName: 'laptop', peerName: 'dev-box', here: easy, peer: easyPeer, peerHasEndpoints: true, ...over };
}

test('--disable-direct here comes first, whatever else is true', () => {
  assert.equal(
    whyRelayed(ctx({ disabledHere: true, blockedByServer: true, here: { udp: false } })),
    'direct connections are disabled on this side (--disable-direct)',
  );
});

test('the server blocking direct paths comes next', () => {
  assert.equal(whyRelayed(ctx({ blockedByServer: true, here: { udp: false } })), 'the coordination server blocks direct connections (--block-direct)');
});

test('UDP blocked here, then there', () => {
  assert.equal(
    whyRelayed(ctx({ here: { udp: false }, peer: { udp: false } })),
    "UDP is blocked on laptop's network: allow outbound UDP for a direct path",
  );
  assert.equal(whyRelayed(ctx({ peer: { udp: false } })), "UDP is blocked on dev-box's network: allow outbound UDP there for a direct path");
});

test('a peer without endpoints', () => {
  assert.equal(whyRelayed(ctx({ peerHasEndpoints: false })), 'dev-box published no endpoints (it runs relay-only, or found no address)');
});

test('same NAT without hairpinning: the internal STUN server advice (either side saying no hairpin is enough)', () => {
  const want =
    'both sides are behind the same NAT (203.0.113.1), which does not hairpin, and no STUN server revealed their inside addresses: ' +
    'run an internal STUN server on the inside network and publish it to peers (traverse server --stun), or enable hairpinning on the NAT';
  assert.equal(whyRelayed(ctx({ here: { ...easy, hairpinning: false }, peer: { ...easy, globalV4: '203.0.113.1:9999' } })), want);
  assert.equal(whyRelayed(ctx({ here: easy, peer: { ...easy, hairpinning: false, globalV4: '203.0.113.1:9999' } })), want);
  // Same NAT but it hairpins (or nobody knows): not this reason.
  assert.equal(whyRelayed(ctx({ here: easy, peer: { ...easy, globalV4: '203.0.113.1:9999' } })), 'no direct path answered: a firewall between the peers may drop UDP');
  assert.equal(
    whyRelayed(ctx({ here: { ...easy, hairpinning: null }, peer: { ...easy, hairpinning: null, globalV4: '203.0.113.1:1' } })),
    'no direct path answered: a firewall between the peers may drop UDP',
  );
});

test('both NATs hard (address-dependent counts as hard too)', () => {
  const want =
    'both NATs are hard (endpoint-dependent mapping): neither side can predict the port the other will use; a port forward on either side would allow a direct path';
  assert.equal(whyRelayed(ctx({ here: hard, peer: { ...hard, globalV4: '198.51.100.1:1' } })), want);
  assert.equal(whyRelayed(ctx({ here: { ...hard, mapping: 'address-dependent' }, peer: { ...hard, globalV4: '198.51.100.1:1' } })), want);
});

test('one hard NAT against a port-restricted one, named from either side', () => {
  assert.equal(
    whyRelayed(ctx({ here: hard, peer: easyPeer })),
    "laptop's NAT is hard (endpoint-dependent mapping) and dev-box's NAT filters by address and port, so laptop's new ports are never let in; a port forward or an easier NAT on either side would allow a direct path",
  );
  assert.equal(
    whyRelayed(ctx({ here: easy, peer: { ...hard, globalV4: '198.51.100.1:1' } })),
    "dev-box's NAT is hard (endpoint-dependent mapping) and laptop's NAT filters by address and port, so dev-box's new ports are never let in; a port forward or an easier NAT on either side would allow a direct path",
  );
});

test('one hard NAT against an open-filtering one is not explained by the NATs: the firewall sentence', () => {
  const fallback = 'no direct path answered: a firewall between the peers may drop UDP';
  assert.equal(whyRelayed(ctx({ here: hard, peer: { ...easyPeer, filtering: 'endpoint-independent' } })), fallback);
  assert.equal(whyRelayed(ctx({ here: hard, peer: { ...easyPeer, filtering: 'address-dependent' } })), fallback);
});

test('nothing known about either side: the firewall sentence, never a crash', () => {
  assert.equal(whyRelayed(ctx({ here: undefined, peer: undefined })), 'no direct path answered: a firewall between the peers may drop UDP');
  assert.equal(whyRelayed(ctx({ here: {}, peer: {} })), 'no direct path answered: a firewall between the peers may drop UDP');
  assert.equal(whyRelayed(ctx({ here: { globalV4: null }, peer: { globalV4: null, hairpinning: false } })), 'no direct path answered: a firewall between the peers may drop UDP');
});

function report(over: Partial<NetcheckReport> = {}): NetcheckReport {
  return {
    udp: true,
    ipv4: true,
    ipv6: false,
    globalV4: '203.0.113.1:4000',
    globalV6: null,
    publicAddresses: ['203.0.113.1:4000'],
    mappingVariesByDestIP: false,
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    hairpinning: true,
    behindNat: true,
    preferredServer: '203.0.113.10:3478',
    local: '192.168.1.2:4000',
    servers: [],
    portMapping: null,
    durationMs: 120,
    ...over,
  };
}

test('summarize: exactly the fields peers see, nothing local', () => {
  assert.deepEqual(summarize(report()), {
    udp: true,
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    hairpinning: true,
    globalV4: '203.0.113.1:4000',
    globalV6: null,
    preferredStun: '203.0.113.10:3478',
  });
});

test('summarize: whether a trusted port mapping exists, only when port mapping was looked at', () => {
  const pm = (trusted: boolean | null, mapped: boolean): NetcheckReport['portMapping'] => ({
    gateway: '192.168.1.1',
    pcp: mapped ? { available: true, externalAddress: '203.0.113.1' } : { available: false, reason: 'no answer' },
    natpmp: { available: false, reason: 'no answer' },
    upnp: { available: false, reason: 'no answer' },
    mapping: mapped ? { protocol: 'pcp', external: '203.0.113.1:4000', lifetimeS: 7200 } : null,
    trusted,
    untrustedReason: trusted === false ? 'the mapped address 100.64.0.2 is private: another NAT is in front of the router' : null,
  });
  assert.equal(summarize(report({ portMapping: pm(true, true) })).portMapped, true);
  assert.equal(summarize(report({ portMapping: pm(false, true) })).portMapped, false, 'a mapping behind a carrier NAT is not trusted');
  assert.equal(summarize(report({ portMapping: pm(null, false) })).portMapped, false);
  assert.equal('portMapped' in summarize(report({ portMapping: null })), false, 'turned off: not measured');
});

test('summarize: an unknown mapping that varied by destination is reported as hard; otherwise mapping is passed through', () => {
  assert.equal(summarize(report({ mapping: 'unknown', mappingVariesByDestIP: true })).mapping, 'address-and-port-dependent');
  assert.equal(summarize(report({ mapping: 'unknown', mappingVariesByDestIP: false })).mapping, 'unknown');
  assert.equal(summarize(report({ mapping: 'unknown', mappingVariesByDestIP: null })).mapping, 'unknown');
  assert.equal(summarize(report({ mapping: 'address-dependent', mappingVariesByDestIP: true })).mapping, 'address-dependent');
});

test('summarize: UDP blocked', () => {
  const s = summarize(report({ udp: false, globalV4: null, mapping: 'unknown', filtering: 'unknown', hairpinning: null, preferredServer: null, mappingVariesByDestIP: null }));
  assert.deepEqual(s, { udp: false, mapping: 'unknown', filtering: 'unknown', hairpinning: null, globalV4: null, globalV6: null, preferredStun: null });
  assert.equal(
    whyRelayed(ctx({ here: s })),
    "UDP is blocked on laptop's network: allow outbound UDP for a direct path",
  );
});

test('no address family in common: IPv6-only here, IPv4-only there (and the other way), named before NAT reasons', () => {
  const v6 = ['[2001:db8:1::2]:4000'];
  const v4 = ['192.168.1.2:5000', '203.0.113.7:5000'];
  assert.equal(
    whyRelayed(ctx({ here: hard, peer: { ...hard, globalV4: '198.51.100.1:1' }, hereEndpoints: v6, peerEndpoints: v4 })),
    'laptop has only IPv6 addresses and dev-box only IPv4 ones: with no address family in common there is no direct path; give dev-box IPv6 or laptop IPv4 for one',
  );
  assert.match(whyRelayed(ctx({ hereEndpoints: v4, peerEndpoints: v6 })), /^laptop has only IPv4 addresses and dev-box only IPv6 ones/);
});

test('a family in common (one side dual-stack), or endpoints unknown: not a family reason', () => {
  const dual = ['192.168.1.2:5000', '[2001:db8:1::2]:5000'];
  assert.doesNotMatch(whyRelayed(ctx({ hereEndpoints: ['[2001:db8:2::2]:4000'], peerEndpoints: dual })), /address family/);
  assert.doesNotMatch(whyRelayed(ctx({ hereEndpoints: ['[2001:db8:2::2]:4000'] })), /address family/);
});
