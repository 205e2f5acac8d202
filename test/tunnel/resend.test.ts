// The one resend loop of the stream-control requests: at once, then every interval, until stopped
// or past the deadline (then the deadline callback, once). Real timers: Node 20's mocked
// setInterval keeps firing after a callback clears its own interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Resend } from '../../src/tunnel/resend.js';

test('a request is sent at once and every interval until the deadline, then onDeadline runs once', async () => {
  const started = Date.now();
  const sent: number[] = [];
  const expired: number[] = [];
  new Resend(() => sent.push(Date.now() - started), 20, 100, () => expired.push(Date.now() - started)).start();
  assert.equal(sent.length, 1, 'the first send is at once');
  await sleep(300);
  assert.equal(expired.length, 1);
  assert.ok(expired[0]! > 100);
  assert.ok(sent.length >= 2 && sent.length <= 6, `${sent.length} sends`);
  assert.ok(sent.every((at) => at <= 100), 'no send after the deadline');
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i]! - sent[i - 1]! >= 15, 'one send per interval');
  const n = sent.length;
  await sleep(100);
  assert.equal(sent.length, n);
  assert.equal(expired.length, 1);
});

test('stop: no more sends and no deadline; start twice sends once', async () => {
  let sent = 0;
  let expired = 0;
  const r = new Resend(() => sent++, 20, 100, () => expired++);
  r.start();
  r.start();
  assert.equal(sent, 1);
  await sleep(50);
  r.stop();
  const n = sent;
  assert.ok(n >= 2, `${n} sends`);
  await sleep(200);
  assert.equal(sent, n);
  assert.equal(expired, 0);
});
