// The probe budget (pure, clock-injected) and the aiming rule: what a node may send to direct
// addresses, and where.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROBE_LIMITS, DestinationWindow, ProbeBudget, TokenBucket } from '../../src/magicsock/probe-budget.js';
import { aimBirthday, aimCallMeMaybe, aimPredictionTargets, isSendableAddress, mayAim, normalizeIp } from '../../src/magicsock/probe-aim.js';

const L = DEFAULT_PROBE_LIMITS;

test('token bucket: the burst at once, then the rate; never more than it holds', () => {
  const b = new TokenBucket({ burst: 10, perSec: 5 });
  let n = 0;
  while (b.has(1, 0)) {
    b.take(1);
    n++;
  }
  assert.equal(n, 10);
  assert.equal(b.has(1, 100), false, '0.5 tokens after 100 ms');
  assert.equal(b.has(1, 200), true);
  b.take(1);
  assert.equal(b.has(1, 200), false);
  assert.equal(b.has(10, 100_000), true, 'refills to the burst');
  assert.equal(b.has(11, 100_000), false, 'and no further');
  assert.equal(b.full(100_000), true);
});

test('destination window: at most cap distinct destinations in any window, repeats are free', () => {
  const w = new DestinationWindow(3, 1000);
  for (const d of ['a', 'b', 'c']) {
    assert.ok(w.has(d, 0));
    w.take(d, 0);
  }
  assert.equal(w.has('d', 500), false);
  assert.equal(w.has('a', 500), true, 'a destination already counted');
  w.take('a', 500);
  assert.equal(w.has('d', 999), false);
  assert.equal(w.has('d', 1000), true, 'the first ones left the window');
});

test('per identity: burst then rate, whichever key of it sends; another identity has its own', () => {
  const b = new ProbeBudget();
  let sent = 0;
  for (let i = 0; i < 1000; i++) if (b.allowProbe('client:laptop', '192.0.2.1:1000', 80, 0)) sent++;
  assert.equal(sent, L.groupPackets.burst);
  assert.equal(b.allowProbe('client:laptop', '192.0.2.1:1000', 80, 0), false);
  assert.equal(b.allowProbe('client:other', '192.0.2.1:1000', 80, 0), true, 'another identity');
  // One second later: the rate's worth.
  sent = 0;
  for (let i = 0; i < 1000; i++) if (b.allowProbe('client:laptop', '192.0.2.1:1000', 80, 1000)) sent++;
  assert.equal(sent, L.groupPackets.perSec);
});

test('per identity: at most groupDestinations (256) distinct destinations a minute (a port scan stops there)', () => {
  const b = new ProbeBudget();
  let ok = 0;
  for (let port = 1; port <= 500; port++) if (b.allowProbe('g', `192.0.2.1:${port}`, 80, port * 100)) ok++;
  assert.equal(ok, L.groupDestinations);
  assert.equal(b.allowProbe('g', '192.0.2.1:1', 80, 50_000), true, 'a counted destination still gets packets');
  assert.equal(b.allowProbe('g', '192.0.2.1:9999', 80, 60_099), false);
  assert.equal(b.allowProbe('g', '192.0.2.1:9999', 80, 60_100), true, 'the first left the window after 60 s');
});

test('per identity: bytes are bounded too (large packets run out first)', () => {
  const b = new ProbeBudget();
  let ok = 0;
  for (let i = 0; i < 200; i++) if (b.allowProbe('g', '192.0.2.1:1', 1000, 0)) ok++;
  assert.equal(ok, Math.floor(L.groupBytes.burst / 1000));
});

test('per node: many identities together stop at the node budget', () => {
  const b = new ProbeBudget();
  let ok = 0;
  for (let g = 0; g < 100; g++) for (let i = 0; i < 50; i++) if (b.allowProbe(`g${g}`, `192.0.2.${g}:${1000 + (i % 5)}`, 80, 0)) ok++;
  assert.equal(ok, L.nodePackets.burst);
  // Distinct destinations per node: more identities than the node's cap, 1 destination each.
  const c = new ProbeBudget();
  ok = 0;
  const identities = L.nodeDestinations + 100;
  for (let g = 0; g < identities; g++) if (c.allowProbe(`g${g}`, `198.51.100.${g % 250}:${2000 + g}`, 80, g * 5)) ok++;
  assert.equal(ok, L.nodeDestinations);
});

test('a refused probe spends nothing: the group is not charged for what the node refused', () => {
  const b = new ProbeBudget({ ...L, nodePackets: { burst: 1, perSec: 0 } });
  assert.ok(b.allowProbe('a', 'x:1', 80, 0));
  for (let i = 0; i < 10; i++) assert.equal(b.allowProbe('b', 'x:1', 80, 0), false);
  const c = new ProbeBudget({ ...L, nodePackets: { burst: 1000, perSec: 0 } });
  let ok = 0;
  for (let i = 0; i < 1000; i++) if (c.allowProbe('b', 'x:1', 80, 0)) ok++;
  assert.equal(ok, L.groupPackets.burst);
});

test('port prediction: one attempt per identity a minute, 8 per node, 2560 packets each within 30 s', () => {
  const b = new ProbeBudget();
  assert.equal(b.allowPrediction('g', 0), false, 'no attempt, no packets');
  assert.ok(b.beginPrediction('g', 0));
  assert.equal(b.beginPrediction('g', 59_999), false, 'same identity within a minute, whatever key');
  let n = 0;
  for (let i = 0; i < 5000; i++) if (b.allowPrediction('g', 2000)) n++;
  assert.equal(n, L.predictionPackets);
  const c = new ProbeBudget();
  assert.ok(c.beginPrediction('h', 0));
  assert.equal(c.allowPrediction('h', L.predictionLifetimeMs + 1), false, 'an attempt ends after 30 s');
  assert.ok(c.beginPrediction('h', 60_000));
  for (let g = 0; g < 7; g++) assert.ok(c.beginPrediction(`other${g}`, 60_000));
  assert.equal(c.beginPrediction('ninth', 60_000), false, '8 per node a minute');
  assert.ok(c.beginPrediction('ninth', 120_000));
});

// ---- aiming ------------------------------------------------------------------------------------

const none = new Set<string>();

test('aim: published and observed endpoints, any port of the vouched IP; nothing else', () => {
  const aim = { published: new Set(['203.0.113.5:4000']), observed: new Set(['198.51.100.9:777']), vouchedIp: '203.0.113.5' };
  assert.ok(mayAim('203.0.113.5:4000', aim));
  assert.ok(mayAim('198.51.100.9:777', aim));
  assert.ok(mayAim('203.0.113.5:31337', aim), 'the vouched IP');
  assert.equal(mayAim('198.51.100.9:778', aim), false, 'an observed IP is not vouched for other ports');
  assert.equal(mayAim('192.0.2.66:80', aim), false);
  assert.equal(mayAim('192.0.2.66:80', { published: none, observed: none, vouchedIp: null }), false);
});

test('aim: never unspecified, broadcast, multicast or port 0, even when published', () => {
  for (const e of ['0.0.0.0:4000', '255.255.255.255:4000', '224.0.0.251:5353', '239.1.2.3:9', '[::]:4000', '[ff02::1]:4000', '240.0.0.1:9']) {
    assert.equal(mayAim(e, { published: new Set([e]), observed: none, vouchedIp: null }), false, e);
  }
  assert.equal(isSendableAddress('203.0.113.5', 0), false);
  assert.equal(isSendableAddress('203.0.113.5', 70000), false);
  assert.equal(isSendableAddress('not-an-ip', 1), false);
  assert.ok(isSendableAddress('127.0.0.1', 1));
  assert.ok(isSendableAddress('2001:db8::1', 1));
});

test('aim: call-me-maybe keeps published endpoints and those on the vouched IP only', () => {
  const aim = { published: new Set(['10.0.0.5:4000']), vouchedIp: '203.0.113.5' };
  assert.deepEqual(aimCallMeMaybe(['10.0.0.5:4000', '203.0.113.5:4100', '192.0.2.66:53', '10.0.0.5:4001', '0.0.0.0:1'], aim), ['10.0.0.5:4000', '203.0.113.5:4100']);
  assert.deepEqual(aimCallMeMaybe(['192.0.2.66:53'], { published: none, vouchedIp: null }), []);
});

test('aim: a birthday counts only for the vouched IP; prediction targets only on it', () => {
  assert.ok(aimBirthday('203.0.113.5', '203.0.113.5'));
  assert.equal(aimBirthday('192.0.2.66', '203.0.113.5'), false);
  assert.equal(aimBirthday('203.0.113.5', null), false);
  assert.equal(aimBirthday('0.0.0.0', '0.0.0.0'), false);
  assert.equal(aimBirthday('224.0.0.1', '224.0.0.1'), false);
  assert.deepEqual(aimPredictionTargets(['203.0.113.5:4000', '192.0.2.66:4000', '10.0.0.1:1'], '203.0.113.5'), ['203.0.113.5:4000']);
  assert.deepEqual(aimPredictionTargets(['203.0.113.5:4000'], null), []);
});

test('normalizeIp: IPv4-mapped IPv6 is the IPv4 address; junk is null', () => {
  assert.equal(normalizeIp('::ffff:203.0.113.5'), '203.0.113.5');
  assert.equal(normalizeIp('2001:DB8::1'), '2001:db8::1');
  assert.equal(normalizeIp('[2001:db8::1]'), '2001:db8::1');
  assert.equal(normalizeIp('example.com'), null);
  assert.equal(normalizeIp(null), null);
  assert.equal(normalizeIp(''), null);
});
