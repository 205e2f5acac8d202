// The loop both port-mapping keepers run (portmap/renewal-loop.ts): one step at a time, and a step
// asked for while one runs (a network change, a gateway's announcement) runs right after it,
// not at the next tick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RenewalLoop } from '../../src/portmap/renewal-loop.js';
import { silentLogger } from '../../src/log/logger.js';

test('a step asked for during a step runs right after it; steps never overlap', async () => {
  let now = 0;
  let running = 0;
  let overlapped = false;
  const maps: number[] = [];
  let release!: () => void;
  const loop: RenewalLoop = new RenewalLoop({
    now: () => now,
    log: silentLogger,
    what: 'test mapping',
    tickMs: 3_600_000, // no tick during the test: only asked-for steps run
    expired: () => undefined,
    checkEpoch: async () => undefined,
    map: async () => {
      running++;
      overlapped ||= running > 1;
      maps.push(now);
      loop.schedule.mapped(now, 3600, null); // held for an hour: nothing due until the network changes
      if (maps.length === 1) await new Promise<void>((r) => (release = r));
      running--;
    },
  });
  try {
    await new Promise((r) => setImmediate(r)); // the first step starts after the constructor
    assert.deepEqual(maps, [0]);
    now = 5;
    loop.schedule.networkChanged(now); // map afresh now...
    void loop.step(); // ...asked for while the first map is still waiting on its gateway
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(maps, [0], 'not while the first step runs');
    release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(maps, [0, 5], 'right after it');
    assert.equal(overlapped, false);
  } finally {
    loop.stop();
  }
});
