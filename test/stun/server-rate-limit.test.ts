// The token-bucket table on a fake clock: refill, bound on the table, eviction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceRateLimiter } from '../../src/stun/server-rate-limit.js';

test('a bucket allows `burst` at once and refills at `rate`', () => {
  let now = 0;
  const l = new SourceRateLimiter({ rate: 10, burst: 10, now: () => now });
  let ok = 0;
  for (let i = 0; i < 20; i++) if (l.allow('192.0.2.1')) ok++;
  assert.equal(ok, 10);
  now += 500;
  ok = 0;
  for (let i = 0; i < 20; i++) if (l.allow('192.0.2.1')) ok++;
  assert.equal(ok, 5);
});

test('rate 0 turns limiting off', () => {
  const l = new SourceRateLimiter({ rate: 0 });
  assert.equal(l.enabled, false);
  for (let i = 0; i < 1000; i++) assert.ok(l.allow('192.0.2.1'));
  assert.equal(l.size, 0);
});

test('a spoofed flood of addresses cannot grow the table past its bound', () => {
  const l = new SourceRateLimiter({ rate: 5, maxEntries: 1000, now: () => 0 });
  for (let i = 0; i < 100_000; i++) l.allow(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  assert.equal(l.size, 1000);
});

test('eviction drops the oldest entry, which then starts with a full bucket', () => {
  const l = new SourceRateLimiter({ rate: 1, burst: 1, maxEntries: 2, now: () => 0 });
  assert.ok(l.allow('a'));
  assert.equal(l.allow('a'), false);
  l.allow('b');
  l.allow('c'); // evicts a
  assert.ok(l.allow('a'));
});
