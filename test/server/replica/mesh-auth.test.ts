import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshMac, meshMacValid, newNonce, parseMeshKey } from '../../../src/server/replica/mesh-auth.js';

const key = Buffer.alloc(32, 7);
const t = { acceptor: 'a'.repeat(16), acceptorNonce: newNonce(), dialer: 'b'.repeat(16), dialerNonce: newNonce() };

test('a mesh proof is bound to the key, the role, both ids and both nonces', () => {
  const mac = meshMac(key, 'dial', t);
  assert.equal(meshMacValid(key, 'dial', t, mac), true);
  assert.equal(meshMacValid(Buffer.alloc(32, 8), 'dial', t, mac), false);
  // The acceptor's answer cannot be the dialer's proof reflected back.
  assert.equal(meshMacValid(key, 'accept', t, mac), false);
  assert.equal(meshMacValid(key, 'dial', { ...t, acceptorNonce: newNonce() }, mac), false);
  assert.equal(meshMacValid(key, 'dial', { ...t, dialer: 'c'.repeat(16) }, mac), false);
  assert.equal(meshMacValid(key, 'dial', t, 'zz'), false);
});

test('mesh keys: hex or text of at least 32 bytes; shorter ones are refused with how to make one', () => {
  assert.equal(parseMeshKey('ab'.repeat(32) + '\n').length, 32);
  assert.equal(parseMeshKey('x'.repeat(40)).length, 40);
  assert.throws(() => parseMeshKey('ab'.repeat(16)), /16 bytes; it must be at least 32 \(make one with: openssl rand -hex 32\)/);
});
