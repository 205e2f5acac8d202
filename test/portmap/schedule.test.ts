// The renewal schedule, driven with explicit times: no sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epochWentBack, RenewalSchedule } from '../../src/portmap/schedule.js';

test('maps at once, renews at half the lifetime, drops the mapping when it runs out', () => {
  const s = new RenewalSchedule(1000, { epochCheckMs: 60_000 });
  assert.equal(s.due(1000), 'map');
  s.mapped(1000, 7200, null);
  assert.equal(s.due(1000 + 3_599_999), null, 'UPnP: no epoch checks');
  assert.equal(s.due(1000 + 3_600_000), 'map', 'renewal at half of two hours');
  s.failed(1000 + 3_600_000, false);
  assert.equal(s.holding, true, 'a failed renewal keeps the mapping while it lasts');
  assert.equal(s.expired(1000 + 7_199_999), false);
  assert.equal(s.expired(1000 + 7_200_000), true);
  assert.equal(s.holding, false);
});

test('failures back off by doubling, up to a cap; nothing available waits the reprobe interval', () => {
  const s = new RenewalSchedule(0, { retryMinMs: 1000, retryMaxMs: 5000, reprobeMs: 300_000 });
  s.failed(0, false);
  assert.equal(s.nextAt(), 1000);
  s.failed(1000, false);
  assert.equal(s.nextAt(), 3000);
  s.failed(3000, false);
  s.failed(7000, false);
  assert.equal(s.nextAt(), 12_000, 'capped at 5 s');
  const idle = new RenewalSchedule(0, { retryMinMs: 1000, reprobeMs: 300_000 });
  idle.failed(0, true);
  assert.equal(idle.nextAt(), 1000, 'a missed probe is retried soon a few times');
  idle.failed(1000, true);
  idle.failed(3000, true);
  assert.equal(idle.nextAt(), 7000);
  idle.failed(7000, true);
  assert.equal(idle.due(306_999), null, 'then only every reprobe interval');
  assert.equal(idle.due(307_000), 'map');
});

test('PCP / NAT-PMP: the epoch is checked between renewals; going back means the router restarted', () => {
  const s = new RenewalSchedule(0, { epochCheckMs: 60_000 });
  s.mapped(0, 7200, 1000);
  assert.equal(s.due(59_999), null);
  assert.equal(s.due(60_000), 'check-epoch');
  assert.equal(s.epochSeen(60_000, 1060), false, 'the epoch advanced with our clock');
  assert.equal(s.due(60_000), null);
  assert.equal(s.epochSeen(120_000, 3), true, 'the router counts from zero again');
  assert.equal(s.holding, false);
  assert.equal(s.due(120_000), 'map', 'map again at once');
});

test('a network change forgets the mapping and maps again now', () => {
  const s = new RenewalSchedule(0);
  s.mapped(0, 7200, 5);
  s.networkChanged(10_000);
  assert.equal(s.holding, false);
  assert.equal(s.due(10_000), 'map');
});

test('epochWentBack follows RFC 6887 section 8.5', () => {
  const prev = { serverS: 1000, clientMs: 0 };
  assert.equal(epochWentBack(prev, { serverS: 1100, clientMs: 100_000 }), false, 'in step');
  assert.equal(epochWentBack(prev, { serverS: 998, clientMs: 1000 }), true, 'backwards by more than a second');
  assert.equal(epochWentBack(prev, { serverS: 1010, clientMs: 100_000 }), true, 'server time advanced far less than ours (restarted meanwhile)');
  assert.equal(epochWentBack(prev, { serverS: 2000, clientMs: 10_000 }), true, 'server time ran far ahead of ours');
  assert.equal(epochWentBack(prev, { serverS: 1001, clientMs: 2000 }), false, 'within the slack');
});
