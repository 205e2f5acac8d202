import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllowList, AllowListError, DEFAULT_ALLOWED_TARGETS } from '../../src/tunnel/allow-list.js';

test('the default allows the agent\'s loopback only', async () => {
  const a = new AllowList();
  assert.deepEqual(a.patterns, DEFAULT_ALLOWED_TARGETS);
  assert.deepEqual(await a.check('127.0.0.1:22'), { address: '127.0.0.1', port: 22 });
  assert.deepEqual(await a.check('127.8.9.10:5432'), { address: '127.8.9.10', port: 5432 });
  assert.deepEqual(await a.check('[::1]:8080'), { address: '::1', port: 8080 });
  const local = await a.check('localhost:80');
  assert.ok('address' in local && (local.address === '127.0.0.1' || local.address === '::1'));
  for (const t of ['10.0.0.1:22', '192.0.2.7:80', '[2001:db8::1]:443']) {
    const r = await a.check(t);
    assert.ok('error' in r && /not allowed by the agent/.test(r.error), t);
  }
});

test('CIDR blocks, port ranges, names and * match what they say', async () => {
  const a = new AllowList(['10.0.0.0/8:5432', '192.0.2.1:8000-8010', 'localhost:*', '[2001:db8::/32]:443']);
  assert.ok('address' in (await a.check('10.200.3.4:5432')));
  assert.ok('error' in (await a.check('10.200.3.4:5433')));
  assert.ok('address' in (await a.check('192.0.2.1:8005')));
  assert.ok('error' in (await a.check('192.0.2.1:8011')));
  assert.ok('address' in (await a.check('[2001:db8:1::5]:443')));
  assert.ok('error' in (await a.check('127.0.0.1:22')), 'localhost by name, not its address');
  assert.ok('address' in (await a.check('localhost:22')));
  const any = new AllowList(['*:*']);
  assert.ok('address' in (await any.check('203.0.113.9:1')));
});

test('bad patterns and bad targets are explained, not thrown', async () => {
  for (const p of ['bogus', '10.0.0.0/33:80', '127.0.0.1:0', '127.0.0.1:9-3', 'bad_name!:80', '127.0.0.1:http']) {
    assert.throws(() => new AllowList([p]), AllowListError, p);
  }
  const a = new AllowList();
  const r = await a.check('no-port-here');
  assert.ok('error' in r);
  const n = await new AllowList(['*:*']).check('name.invalid:80');
  assert.ok('error' in n && /cannot resolve/.test(n.error));
});
