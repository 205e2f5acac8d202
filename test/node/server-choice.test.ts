// Which server a peer with several tries next, and when: pure, with the clock and the random
// source given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServerChoice } from '../../src/node/server-choice.js';
import { backoffDelay } from '../../src/node/backoff.js';
import { resolveTargets, pinnedLookup } from '../../src/node/server-targets.js';
import { parseServerUrls, ServerUrlError } from '../../src/node/server-url.js';

const B = { baseMs: 200, maxMs: 10_000 };
const half = (): number => 0.5;

test('the first choice is the first server at once; a server that goes away is left for the next one at once', () => {
  const c = new ServerChoice(['a', 'b', 'c'], B, half);
  assert.deepEqual(c.next(0, true), { target: 'a', delayMs: 0 });
  c.failed('a', 1000); // connected to a, then a went away
  const n = c.next(1000);
  assert.equal(n.target, 'b');
  assert.equal(n.delayMs, 50, 'only the jitter (up to half the base delay)');
  c.failed('b', 1100); // b refuses too
  assert.equal(c.next(1100).target, 'c');
  c.failed('c', 1200);
  // Every server failed once: the one that may be tried soonest (a, at 1000 + 100).
  assert.deepEqual(c.next(1200), { target: 'a', delayMs: 50 });
});

test('when every server keeps failing, the waits grow as the single-server backoff does, each server on its own', () => {
  const c = new ServerChoice(['a', 'b'], B, half);
  let now = 0;
  const seen: [string, number][] = []; // [server, time tried]
  let pick = c.next(now, true);
  for (let i = 0; i < 8; i++) {
    now += pick.delayMs;
    seen.push([pick.target, now]);
    c.failed(pick.target, now);
    pick = c.next(now);
  }
  assert.deepEqual(seen.map(([t]) => t), ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'], 'alternates');
  // Each server's tries are apart by its own backoff: backoffDelay(0), (1), (2) = 100, 200, 400.
  const gaps = (who: string): number[] => {
    const at = seen.filter(([t]) => t === who).map(([, t]) => t);
    return at.slice(1).map((t, i) => t - at[i]!);
  };
  assert.deepEqual(gaps('a'), [100, 200, 400]);
  assert.deepEqual(gaps('b'), [100, 200, 400]);
  assert.equal(c.failuresOf('a'), 4);
  c.held('a');
  assert.equal(c.failuresOf('a'), 0, 'a connection that held starts the backoff over');
});

test('with one server the delays are exactly backoffDelay(0), backoffDelay(1), ...', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.integer({ min: 1, max: 12 }), (r, n) => {
      const c = new ServerChoice(['only'], B, () => r);
      let now = 0;
      c.next(now, true);
      for (let k = 0; k < n; k++) {
        c.failed('only', now);
        const d = c.next(now).delayMs;
        if (d !== Math.max(backoffDelay(k, B, () => r), Math.floor(r * (B.baseMs / 2)))) return false;
        now += d;
      }
      return true;
    }),
  );
});

test('a new list keeps what is known of servers still in it, forgets the rest, and goes on after the last one tried', () => {
  const c = new ServerChoice(['a', 'b'], B, half);
  c.next(0, true);
  c.failed('a', 0);
  c.setTargets(['b', 'a', 'c']);
  assert.equal(c.failuresOf('a'), 1);
  assert.equal(c.next(0).target, 'c', 'after a in the new order, c and b are both ready: c comes first after a');
  c.setTargets(['b']);
  assert.equal(c.failuresOf('a'), 0);
  assert.deepEqual(c.list, ['b']);
  assert.throws(() => c.setTargets([]), RangeError);
});

test('server lists: comma-separated URLs in order, duplicates dropped, empty entries refused', () => {
  assert.deepEqual(parseServerUrls('http://a:1, b:2 ,http://a:1').map((u) => u.href), ['http://a:1/', 'http://b:2/']);
  assert.deepEqual(parseServerUrls('https://coord.example').map((u) => u.href), ['https://coord.example/']);
  assert.throws(() => parseServerUrls('http://a:1,,http://b:2'), ServerUrlError);
  assert.throws(() => parseServerUrls('http://a:1,ftp://b'), /scheme ftp/);
});

test('a name with several addresses of a family is several servers; one address per family, or none now, is one', async () => {
  const resolver = async (host: string) => {
    if (host === 'replicas.test') return [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }, { address: '127.0.0.2', family: 4 }];
    if (host === 'one.test') return [{ address: '127.0.0.4', family: 4 }];
    if (host === 'dual.test') return [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }];
    throw new Error('ENOTFOUND');
  };
  const t = await resolveTargets(['ws://replicas.test:8080/x', 'ws://one.test:1/x', 'ws://dual.test:5/x', 'ws://127.0.0.1:2/x', 'ws://[::1]:3/x', 'ws://gone.test:4/x'], resolver);
  assert.deepEqual(
    t.map((x) => [x.key, x.address?.address]),
    [
      ['ws://replicas.test:8080/x (127.0.0.2)', '127.0.0.2'],
      ['ws://replicas.test:8080/x (127.0.0.3)', '127.0.0.3'],
      ['ws://one.test:1/x', undefined],
      ['ws://dual.test:5/x', undefined], // one server on both families: the system's happy eyeballs
      ['ws://127.0.0.1:2/x', undefined],
      ['ws://[::1]:3/x', undefined],
      ['ws://gone.test:4/x', undefined],
    ],
  );
  const lookup = pinnedLookup({ address: '127.0.0.3', family: 4 });
  lookup('replicas.test', { all: true }, (err, a) => assert.deepEqual([err, a], [null, [{ address: '127.0.0.3', family: 4 }]]));
  lookup('replicas.test', {}, (err, a, f) => assert.deepEqual([err, a, f], [null, '127.0.0.3', 4]));
});
