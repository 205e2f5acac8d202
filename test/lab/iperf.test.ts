// iperf3 through `traverse forward`, on every carrier a stream can have. iperf3 keeps an idle
// control connection open beside its data connection for the whole test, and checks what both
// carried: a carrier that stalls or closes an idle stream, or loses bytes, fails it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { forwardPath, startForward, streamPair } from '../../lab/streams-lab.js';

const skip = await labSkip();

const CARRIERS = [
  { carrier: 'TCP lane', path: 'direct', args: [], log: /stream moved to a TCP lane/ },
  { carrier: 'UDX', path: 'direct', args: ['--no-tcp-lane'], log: null },
  { carrier: 'relay lane', path: 'relay', args: ['--disable-direct'], log: /stream moved to a relay lane/ },
  { carrier: 'relayed datagrams', path: 'relay', args: ['--disable-direct', '--no-relay-lane'], log: null },
] as const;

describe('iperf3 through traverse forward', { skip }, () => {
  test('completes on a TCP lane, on UDX, on a relay lane and on relayed datagrams (easy/easy)', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab);
      const server = lab.spawn('agent', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', '5201']);
      for (let i = 0; !(await lab.exec('agent', 'ss', ['-Hntl'])).stdout.includes('127.0.0.1:5201 '); i++) {
        if (i > 100 || server.exitCode !== null) throw new Error('iperf3 -s did not listen');
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const [i, c] of CARRIERS.entries()) {
        const port = 15201 + i;
        const fwd = await startForward(lab, pair, [`${port}:127.0.0.1:5201`], { args: [...c.args], env: { TRAVERSE_LOG_LEVEL: 'debug' } });
        try {
          await forwardPath(fwd, c.path, 10_000);
          const r = await lab.exec('client', 'iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', '2', '-J'], { timeoutMs: 30_000 });
          assert.equal(r.code, 0, `iperf3 over ${c.carrier}: ${r.stdout.slice(-1500)} ${r.stderr}`);
          const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
          assert.ok(j.end.sum_received.bytes > 0, `${c.carrier}: bytes received`);
          t.diagnostic(`${c.carrier}: ${(j.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s`);
          if (c.log) assert.match(fwd.lines.err, c.log, `${c.carrier} carried the streams`);
          else assert.doesNotMatch(fwd.lines.err, /stream moved to a (TCP|relay) lane/, `${c.carrier}: no lane`);
        } finally {
          fwd.process.kill('SIGTERM');
        }
      }
    } finally {
      await lab.teardown();
    }
  });
});
