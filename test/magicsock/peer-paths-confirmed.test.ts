// Which endpoints are the peer's own (confirmed: they answered our ping with its txid) and so
// not probe targets: the probe budget does not count traffic to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerPaths } from '../../src/magicsock/peer-paths.js';

test('confirmed: only an endpoint that answered our ping from there, and only within the trust time', () => {
  const p = new PeerPaths({ directAllowed: true, trustMs: 1000 });
  p.setPublished(['203.0.113.5:4000', '203.0.113.5:4001']);
  assert.equal(p.confirmed('203.0.113.5:4000', 0), false, 'published is not confirmed');
  p.pingSent('t1', '203.0.113.5:4000', 0);
  assert.equal(p.pongReceived('t1', '203.0.113.5:4001', 10), null, 'a pong from elsewhere');
  assert.equal(p.confirmed('203.0.113.5:4001', 10), false);
  p.pingSent('t2', '203.0.113.5:4000', 20);
  assert.ok(p.pongReceived('t2', '203.0.113.5:4000', 30));
  assert.ok(p.confirmed('203.0.113.5:4000', 30));
  assert.ok(p.confirmed('203.0.113.5:4000', 1030));
  assert.equal(p.confirmed('203.0.113.5:4000', 1031), false, 'trust ran out');
  assert.equal(p.confirmed('192.0.2.1:1', 30), false, 'not a candidate');
});
