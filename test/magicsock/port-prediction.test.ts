import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIRTHDAY_PROBES, BIRTHDAY_SOCKETS, randomPorts } from '../../src/magicsock/port-prediction.js';
import { decodeDisco, encodeDisco } from '../../src/disco/index.js';

test('probe ports are distinct, within 1024-65535, and as many as asked', () => {
  const ports = randomPorts(BIRTHDAY_PROBES);
  assert.equal(ports.length, BIRTHDAY_PROBES);
  assert.equal(new Set(ports).size, ports.length);
  assert.ok(ports.every((p) => Number.isInteger(p) && p >= 1024 && p <= 65535));
  assert.equal(randomPorts(100_000).length, 65535 - 1024 + 1, 'never more than the range holds');
});

test('the chosen sizes give a better than 99.9% chance that a probe meets a mapping', () => {
  const miss = (1 - BIRTHDAY_SOCKETS / (65535 - 1024 + 1)) ** BIRTHDAY_PROBES;
  assert.ok(1 - miss > 0.999, `hit probability ${(1 - miss).toFixed(5)}`);
});

test('the birthday disco message carries the hard side\'s public IP, v4 or v6', () => {
  for (const ip of ['203.0.113.5', '2001:db8::5']) assert.deepEqual(decodeDisco(encodeDisco({ type: 'birthday', ip })), { type: 'birthday', ip });
  assert.equal(decodeDisco(Buffer.from([9, 1, 4, 0])), null, 'truncated');
});
