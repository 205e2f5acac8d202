// The pure parts of the lab (address plan, names, rule sets): no root needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firewall6Ruleset, natRuleset } from '../../lab/nat.js';
import { parseLan6 } from '../../lab/ipv6-plan.js';
import { checkIfName, newPrefix, parseNamespace } from '../../lab/names.js';
import { planTopology } from '../../lab/spec.js';
import { corporate, doubleNat, pairOfNats, pairOfNats6, TOPOLOGIES } from '../../lab/topologies.js';

test('every named topology plans without error, with unique addresses', () => {
  for (const [name, make] of Object.entries(TOPOLOGIES)) {
    const plan = planTopology(make());
    const addrs = plan.nodes.flatMap((n) => n.addresses);
    assert.equal(new Set(addrs).size, addrs.length, name);
    for (const n of plan.nodes) checkIfName(n.uplink.portName);
  }
});

test('double NAT: the home router sits in the CGN range behind the CGN', () => {
  const plan = planTopology(doubleNat());
  const home = plan.nodes.find((n) => n.name === 'home');
  assert.deepEqual(home?.addresses, ['100.64.0.2']);
  assert.equal(home?.uplink.gateway, '100.64.0.1');
  assert.equal(plan.nodes.findIndex((n) => n.name === 'cgn') < plan.nodes.findIndex((n) => n.name === 'home'), true);
});

test('corporate: fixed internal STUN addresses are kept and never handed out twice', () => {
  const plan = planTopology(corporate(false));
  assert.deepEqual(plan.nodes.find((n) => n.name === 'istun')?.addresses, ['10.10.0.10', '10.10.0.11']);
  assert.deepEqual(plan.nodes.find((n) => n.name === 'vpn')?.addresses, ['10.10.0.2']);
});

test('plans reject bad specs with a message naming the problem', () => {
  assert.throws(() => planTopology({ hosts: [{ name: 'a', on: 'nowhere' }] }), /unknown network "nowhere"/);
  assert.throws(() => planTopology({ hosts: [{ name: 'a', on: 'internet' }, { name: 'a', on: 'internet' }] }), /used twice/);
  assert.throws(() => planTopology({ hosts: [{ name: 'x', on: 'internet', addresses: ['10.0.0.1'] }] }), /outside network/);
  assert.throws(() => planTopology({ hosts: [{ name: 'way-too-long-name', on: 'internet' }] }), /1-10 lowercase/);
});

test('prefixes encode the owning pid so the sweep can tell dead runs from live ones', () => {
  const p = newPrefix(4242);
  assert.deepEqual(parseNamespace(`${p}client`), { prefix: p, owner: 4242 });
  assert.equal(parseNamespace(`${newPrefix('keep')}x`)?.owner, 'keep');
  assert.equal(parseNamespace('somebody-elses-ns'), undefined);
  assert.throws(() => checkIfName('sixteen-chars-xx'), /1-15 chars/);
});

test('rule sets: hard NAT is fully random, firewall drops by default, hairpin only when asked', () => {
  const base = { wanIf: 'wan', wanAddress: '203.0.113.2', lanIf: 'br0', hairpin: false };
  assert.match(natRuleset({ ...base, kind: 'hard' }), /masquerade random,fully-random/);
  const easy = natRuleset({ ...base, kind: 'easy' });
  assert.match(easy, /hook forward priority filter; policy drop;/);
  assert.match(easy, /ct state invalid drop/);
  assert.doesNotMatch(easy, /dnat/);
  assert.match(natRuleset({ ...base, kind: 'easy', hairpin: true }), /iifname "br0" ip daddr 203\.0\.113\.2 udp dport @pubport dnat/);
  assert.match(natRuleset({ ...base, kind: 'udp-blocked' }), /iifname "br0" meta l4proto udp drop/);
});

test('IPv6 plan: internet nodes mirror their IPv4 host number, LAN hosts count up from ::2, IPv6-only hosts have no IPv4', () => {
  const plan = planTopology(pairOfNats6('hard', 'easy', 'ipv6-only', 'ipv4-only'));
  const node = (n: string) => plan.nodes.find((x) => x.name === n)!;
  assert.deepEqual(node('stun').ipv6?.addresses, ['2001:db8::10', '2001:db8::11']);
  assert.deepEqual(node('coord').ipv6?.addresses, ['2001:db8::20']);
  assert.deepEqual(node('rclient').ipv6, { addresses: ['2001:db8::2'], gateway: undefined, lanAddress: '2001:db8:1::1', lanSubnet: '2001:db8:1::/64' });
  assert.deepEqual(node('client').addresses, []);
  assert.deepEqual(node('client').ipv6, { addresses: ['2001:db8:1::2'], gateway: '2001:db8:1::1' });
  assert.equal(node('ragent').ipv6, undefined, 'an IPv4-only router gets no IPv6');
  assert.equal(node('agent').ipv6, undefined);
  assert.deepEqual(node('agent').addresses, ['10.1.0.2']);
  assert.equal(planTopology(pairOfNats('easy', 'easy')).nodes.some((n) => n.ipv6), false, 'no IPv6 unless asked');
});

test('IPv6 plan: bad specs are refused with a reason', () => {
  const v6 = pairOfNats6('easy', 'easy', 'dual-stack', 'dual-stack');
  assert.throws(() => planTopology({ ...v6, ipv6: false }), /need ipv6: true/);
  const v4agent = pairOfNats6('easy', 'easy', 'dual-stack', 'ipv4-only');
  const v6onlyOnV4Lan = { ...v4agent, hosts: v4agent.hosts.map((h) => (h.name === 'agent' ? { ...h, ipv4: false } : h)) };
  assert.throws(() => planTopology(v6onlyOnV4Lan), /IPv6-only but router "ragent" has no IPv6 LAN/);
  assert.throws(() => parseLan6('2001:db8:0::/64'), /internet's IPv6 prefix/);
  assert.throws(() => parseLan6('2001:db8::/64'), /not an IPv6 LAN/);
  assert.throws(() => parseLan6('fd00:1::/64'), /not an IPv6 LAN/);
  assert.throws(() => planTopology({ ...v6, routers: v6.routers!.map((r) => ({ ...r, lan6: '2001:db8:1::/64' })) }), /used twice/);
});

test('IPv6 firewall rule set: stateful, drops new inbound, no NAT66', () => {
  const rules = firewall6Ruleset({ kind: 'hard', wanIf: 'wan', lanIf: 'br0' });
  assert.match(rules, /table ip6 lab6/);
  assert.match(rules, /hook forward priority filter; policy drop;\n\s+ct state established,related accept/);
  assert.match(rules, /iifname "br0" oifname "wan" accept/);
  assert.doesNotMatch(rules, /masquerade|snat|dnat/);
  assert.match(firewall6Ruleset({ kind: 'udp-blocked', wanIf: 'wan', lanIf: 'br0' }), /iifname "br0" meta l4proto udp drop/);
});
