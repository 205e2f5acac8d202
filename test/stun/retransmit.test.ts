import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetransmitSchedule } from '../../src/stun/retransmit.js';
import { RtoEstimator } from '../../src/stun/rto.js';

/** Runs a schedule to its end and returns the send times. */
function sendTimes(s: RetransmitSchedule): { sends: number[]; timeoutAt: number } {
  const sends: number[] = [];
  let now = s.startedAt;
  for (;;) {
    const step = s.step(now);
    if (step.action === 'timeout') return { sends, timeoutAt: now };
    if (step.action === 'send') sends.push(now);
    now = step.nextAt;
  }
}

test('RFC 8489 defaults: 7 transmissions at 0, 500, 1500, 3500, 7500, 15500, 31500 ms; give up at 39.5 s', () => {
  const { sends, timeoutAt } = sendTimes(new RetransmitSchedule(0, { rtoMs: 500 }));
  assert.deepEqual(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
  assert.equal(timeoutAt, 39500);
});

test('a deadline cuts the schedule short', () => {
  const { sends, timeoutAt } = sendTimes(new RetransmitSchedule(1000, { rtoMs: 100, deadlineMs: 1000 }));
  assert.deepEqual(sends, [1000, 1100, 1300, 1700]);
  assert.equal(timeoutAt, 2000);
});

test('Rc and Rm are configurable', () => {
  const { sends, timeoutAt } = sendTimes(new RetransmitSchedule(0, { rtoMs: 10, rc: 3, rm: 2 }));
  assert.deepEqual(sends, [0, 10, 30]);
  assert.equal(timeoutAt, 50);
});

test('stepping early waits; stepping late sends once, not a burst', () => {
  const s = new RetransmitSchedule(0, { rtoMs: 100 });
  assert.equal(s.step(0).action, 'send');
  assert.deepEqual(s.step(50), { action: 'wait', nextAt: 100 });
  assert.equal(s.step(250).action, 'send');
  assert.equal(s.transmissions, 2);
});

test('RTO estimator: starts at 500 ms, follows RFC 6298 smoothing, stays within bounds', () => {
  const e = new RtoEstimator();
  assert.equal(e.current, 500);
  e.sample(40); // srtt 40, rttvar 20 -> 120
  assert.equal(e.current, 120);
  e.sample(40); // rttvar 15, srtt 40 -> 100
  assert.equal(e.current, 100);
  for (let i = 0; i < 50; i++) e.sample(1);
  assert.equal(e.current, 100, 'floor of 100 ms');
  for (let i = 0; i < 50; i++) e.sample(10_000);
  assert.equal(e.current, 3000, 'ceiling of 3 s');
  e.sample(Number.NaN);
  assert.equal(e.current, 3000, 'bad samples are ignored');
});
