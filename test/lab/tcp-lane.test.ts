// TCP lanes through real NATs: `traverse speedtest --json` says what carried its bytes.
//   - easy/easy: both NATs keep the local port, so the crossing SYNs of a simultaneous open get
//     through, and the stream runs on a TCP lane. (The agent's listener is no way in here: its
//     NAT drops unsolicited SYNs, so only the simultaneous open can have opened the lane.)
//   - the same with the client's --no-tcp-lane: UDX.
//   - full-cone client, hard agent: the hard NAT gives the agent's SYN a random public port, so
//     no lane opens; the stream still runs direct, on UDX, within the attempt's timeout.
//   - UDP-blocked client, easy agent: no UDP path, so the stream starts on the relay; the lane
//     offer travels over the relay and each side aims at the other's IP as the coordinator saw
//     it: the stream runs direct over TCP.
//   - the same with TCP between the two dropped: the relay lane offered beside the TCP lane
//     carries the stream at once, without waiting for the TCP lane to time out.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { peerEnv } from '../../lab/peers.js';
import { blockTcp, startForward, streamPair, toolRun, toolServer, type StreamPair } from '../../lab/streams-lab.js';
import type { Lab } from '../../lab/lab.js';
import type { SpeedtestResult } from '../../src/cli/speedtest.js';
import type { PingSummary } from '../../src/node/ping.js';
import { BIN } from '../helpers/cli.js';

const skip = await labSkip();

async function speedtest(lab: Lab, pair: StreamPair, extra: string[] = []): Promise<SpeedtestResult> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-lab-speedtest-'));
  const r = await lab.exec(
    'client',
    process.execPath,
    [BIN, 'speedtest', 'dev-box', '--json', '--seconds', '2', '--direction', 'download', '--server', pair.coord.url, '--token', pair.clientToken, ...extra],
    { timeoutMs: 40_000, env: peerEnv(state) },
  );
  assert.equal(r.code, 0, `speedtest failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SpeedtestResult;
}

describe('TCP lanes in the lab', { skip, concurrency: 2 }, () => {
  test('easy/easy: the stream runs on a TCP lane opened by simultaneous open; --no-tcp-lane keeps it on UDX', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab);
      const lane = await speedtest(lab, pair);
      t.diagnostic(`lane: ${lane.mbitPerSecond.toFixed(0)} Mbit/s over ${lane.path} ${lane.endpoint} (${lane.carrier})`);
      assert.equal(lane.path, 'direct');
      assert.equal(lane.carrier, 'tcp');
      assert.ok(lane.bytes > 0);
      const udx = await speedtest(lab, pair, ['--no-tcp-lane']);
      t.diagnostic(`no lane: ${udx.mbitPerSecond.toFixed(0)} Mbit/s over ${udx.path} (${udx.carrier})`);
      assert.equal(udx.path, 'direct');
      assert.equal(udx.carrier, 'udx');
    } finally {
      await lab.teardown();
    }
  });

  test('full-cone client, hard agent: no lane can open; the stream stays direct on UDX', async (t) => {
    const lab = await createLab(pairOfNats('full-cone', 'hard'));
    try {
      const pair = await streamPair(lab);
      const r = await speedtest(lab, pair);
      t.diagnostic(`${r.mbitPerSecond.toFixed(0)} Mbit/s over ${r.path} ${r.endpoint} (${r.carrier})`);
      assert.equal(r.path, 'direct');
      assert.equal(r.carrier, 'udx');
      assert.ok(r.bytes > 0);
    } finally {
      await lab.teardown();
    }
  });

  test('UDP-blocked client, easy agent: ping says direct (tcp); a forward moves from the relay onto a TCP lane losslessly', async (t) => {
    const lab = await createLab(pairOfNats('udp-blocked', 'easy'));
    const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-file-'));
    try {
      const pair = await streamPair(lab);
      const agentIp = lab.publicAddress('agent');
      const state = mkdtempSync(join(tmpdir(), 'traverse-lab-ping-'));
      const ping = await lab.exec('client', process.execPath, [BIN, 'ping', 'dev-box', '-n', '2', '--interval', '200', '--json', '--server', pair.coord.url, '--token', pair.clientToken], {
        timeoutMs: 40_000,
        env: peerEnv(state),
      });
      assert.equal(ping.code, 0, `ping failed (${ping.code}):\n${ping.stdout}\n${ping.stderr}`);
      const summary = JSON.parse(ping.stdout.trim().split('\n').pop()!) as PingSummary;
      t.diagnostic(`ping: ${summary.path} (${summary.transport}) ${summary.endpoint}`);
      assert.equal(summary.path, 'direct');
      assert.equal(summary.transport, 'tcp');
      assert.ok(summary.endpoint?.startsWith(`${agentIp}:`), `the lane goes to the agent's public IP: ${summary.endpoint}`);
      const text = await lab.exec('client', process.execPath, [BIN, 'ping', 'dev-box', '-n', '1', '--server', pair.coord.url, '--token', pair.clientToken], {
        timeoutMs: 40_000,
        env: peerEnv(mkdtempSync(join(tmpdir(), 'traverse-lab-ping-'))),
      });
      t.diagnostic(`ping said:\n${text.stdout}`);
      assert.match(text.stdout, /connected to dev-box direct \(tcp\) via /, text.stdout);

      // 16 MB paced at 8 MB/s: the stream starts on the relay and moves onto the lane mid-transfer.
      const data = randomBytes(16 << 20);
      const file = join(dir, 'random.bin');
      writeFileSync(file, data);
      await toolServer(lab, 'agent', ['serve-file', '9000', file, String(8 << 20)]);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { env: { TRAVERSE_LOG_LEVEL: 'debug' } });
      const got = await toolRun<{ bytes: number; sha256?: string; how: string }>(lab, 'client', ['fetch', '127.0.0.1', '19000']);
      assert.equal(got.how, 'end');
      assert.equal(got.bytes, data.length);
      assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
      assert.match(fwd.lines.err, /stream moved to a TCP lane/, 'the forwarded stream ran on a TCP lane');
      // The client reported the lane as its path: `traverse status` shows it (its spare lane stands on).
      let status = '';
      for (let i = 0; i < 20 && !/client path direct \(tcp\) /.test(status); i++) {
        if (i > 0) await new Promise((res) => setTimeout(res, 250));
        const st = await lab.exec('client', process.execPath, [BIN, 'status', '--server', pair.coord.url, '--token', pair.clientToken], { timeoutMs: 20_000, env: peerEnv(state) });
        status = st.stdout + st.stderr;
      }
      t.diagnostic(`status said:\n${status}`);
      assert.match(status, new RegExp(`client path direct \\(tcp\\) ${agentIp.replace(/\./g, '\\.')}:\\d+`), status);
      fwd.process.kill('SIGTERM');

      const r = await speedtest(lab, pair);
      t.diagnostic(`${r.mbitPerSecond.toFixed(0)} Mbit/s over ${r.path} ${r.endpoint} (${r.carrier})`);
      assert.equal(r.carrier, 'tcp');
      assert.equal(r.path, 'direct');
      assert.ok(r.endpoint?.startsWith(`${lab.publicAddress('agent')}:`) ?? false, `the lane goes to the agent's public IP: ${r.endpoint}`);
      assert.ok(r.bytes > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await lab.teardown();
    }
  });
  test('UDP-blocked client, easy agent, TCP between them dropped: the stream is on a relay lane at once, not after the TCP lane times out', async (t) => {
    const lab = await createLab(pairOfNats('udp-blocked', 'easy'));
    const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-file-'));
    try {
      const pair = await streamPair(lab);
      // The peers may reach the server over TCP, not each other: the TCP lane to the agent's
      // vouched IP runs into its whole timeout (3 s), the relay lane offered beside it does not wait.
      await blockTcp(lab, 'ragent', lab.router('rclient').address);
      const data = randomBytes(4 << 20);
      const file = join(dir, 'random.bin');
      writeFileSync(file, data);
      await toolServer(lab, 'agent', ['serve-file', '9000', file, String(2 << 20)]);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { env: { TRAVERSE_LOG_LEVEL: 'debug', TRAVERSE_TRACE: '1' } });
      const got = await toolRun<{ bytes: number; sha256?: string; how: string }>(lab, 'client', ['fetch', '127.0.0.1', '19000']);
      assert.equal(got.how, 'end');
      assert.equal(got.bytes, data.length);
      assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
      const at = (milestone: string): number => {
        const m = new RegExp(`traverse trace +([\\d.]+) ms .*  ${milestone}\\n`).exec(fwd.lines.err);
        assert.ok(m, `no "${milestone}" in the forward's trace:\n${fwd.lines.err.slice(-3000)}`);
        return Number(m[1]);
      };
      const wait = at('relay lane proved') - at('stream accepted');
      t.diagnostic(`relay lane proved ${wait.toFixed(0)} ms after the stream opened`);
      assert.match(fwd.lines.err, /stream moved to a relay lane/);
      assert.doesNotMatch(fwd.lines.err, /stream moved to a TCP lane/);
      // Room for a loaded machine, well under the TCP lane's 3 s timeout that it used to wait for.
      assert.ok(wait < 1500, `the relay lane took ${wait.toFixed(0)} ms`);
      fwd.process.kill('SIGTERM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await lab.teardown();
    }
  });
});
