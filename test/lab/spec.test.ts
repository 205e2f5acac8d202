// The pure parts of the lab (address plan, names, rule sets): no root needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { natRuleset } from '../../lab/nat.js';
import { checkIfName, newPrefix, parseNamespace } from '../../lab/names.js';
import { planTopology } from '../../lab/spec.js';
import { corporate, doubleNat, TOPOLOGIES } from '../../lab/topologies.js';

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
