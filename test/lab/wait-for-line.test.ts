// waitForLine (lab/peers.ts) reads a child's stdout as a queue of whole lines: a line that arrives in
// the same chunk as the one an earlier call matched is kept for the next call. CI once lost an
// agent's netcheck line that way, when a slow test runner read it together with the "connected" line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { waitForLine } from '../../lab/peers.js';

/** A child that writes `text` to stdout in one write, then waits until killed. */
function printer(text: string): ReturnType<typeof spawn> {
  const script = `process.stdout.write(${JSON.stringify(text)}); setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

test('two lines in one chunk: the second is there for the next call', async (t) => {
  const child = printer('agent "a" connected\nnetcheck: udp true\n');
  t.after(() => child.kill());
  assert.equal(await waitForLine(child, /^agent ".*" connected/, 5000), 'agent "a" connected');
  assert.equal(await waitForLine(child, /^netcheck: /, 5000), 'netcheck: udp true');
});

test('lines are consumed in order: a line before the last match is not matched again', async (t) => {
  const child = printer('step 1\nstep 2\ndone\n');
  t.after(() => child.kill());
  assert.equal(await waitForLine(child, /^step/, 5000), 'step 1');
  assert.equal(await waitForLine(child, /^done$/, 5000), 'done');
  await assert.rejects(waitForLine(child, /^step/, 300), /did not print/);
});

test('a partial line is not matched until its newline arrives', async (t) => {
  const child = spawn(process.execPath, ['-e', `process.stdout.write('netcheck: par'); setTimeout(() => process.stdout.write('tial\\n'), 200); setInterval(() => {}, 1000);`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill());
  assert.equal(await waitForLine(child, /^netcheck: /, 5000), 'netcheck: partial');
});

test('a child that exits first rejects, naming it', async () => {
  const child = spawn(process.execPath, ['-e', `console.log('only this'); console.error('why')`], { stdio: ['ignore', 'pipe', 'pipe'] });
  await assert.rejects(waitForLine(child, /^never$/, 5000, 'the printer'), /the printer exited \(0\) before printing/);
});
