// One node per process, in the lab: one client identity runs two forwards, a speedtest and two
// ssh sessions through `traverse proxy` at the same time. Each is its own node with its own
// tunnel and path, all carry data, and none disturbs another. A ping given the agent's token is
// refused and the running agent is not touched.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { createToken, peerEnv, runPing } from '../../lab/peers.js';
import { forwardPath, sshFixture, sshThrough, startForward, startSshd, streamPair, toolRun, toolServer } from '../../lab/streams-lab.js';
import type { Lab } from '../../lab/lab.js';
import { tunnelsResponse } from '../../src/coordination/views.js';
import type { SpeedtestResult } from '../../src/node/speedtest.js';
import { BIN } from '../helpers/cli.js';

const skip = await labSkip();

const SSH_PORT = 2222;
const ECHO_PORT = 8001;
const BYTES_PORT = 8002;
const BYTES = 20 * 1024 * 1024;

/** ssh through `traverse proxy` that prints the sha256 of 4 MiB of zeros, after a pause that keeps it open. */
function sshSession(lab: Lab, url: string, token: string, key: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proxy = `${process.execPath} ${BIN} proxy dev-box 127.0.0.1:${SSH_PORT} --server ${url} --token ${token}`;
  const env = { ...peerEnv(mkdtempSync(join(tmpdir(), 'traverse-lab-proxy-'))), TRAVERSE_LOG_LEVEL: 'info' };
  return sshThrough(lab, proxy, key, 'sleep 3; head -c 4194304 /dev/zero | sha256sum', { env });
}

// sha256 of 4 MiB of zero bytes.
const ZEROS_4M_SHA256 = 'bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8';

describe('many nodes of one identity in the lab', { skip }, () => {
  test('two forwards, a speedtest and two ssh sessions of one client at once, each on its own path', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab);
      const adminToken = await createToken(pair.coord.dataDir, ['--admin', 'ops']);
      const ssh = await sshFixture(SSH_PORT);
      await startSshd(lab, 'agent', ssh.config, SSH_PORT);
      await toolServer(lab, 'agent', ['echo', String(ECHO_PORT)]);
      await toolServer(lab, 'agent', ['serve-bytes', String(BYTES_PORT), String(BYTES)]);
      const echoFwd = await startForward(lab, pair, [`18001:127.0.0.1:${ECHO_PORT}`]);
      const bytesFwd = await startForward(lab, pair, [`18002:127.0.0.1:${BYTES_PORT}`]);
      await forwardPath(echoFwd, 'direct', 15_000);
      await forwardPath(bytesFwd, 'direct', 15_000);

      // All at once: data through both forwards, a speedtest, two ssh sessions.
      const started = performance.now();
      const speedState = mkdtempSync(join(tmpdir(), 'traverse-lab-speedtest-'));
      const [echo, fetched, speed, ssh1, ssh2] = await Promise.all([
        toolRun<{ ok: boolean; bytes: number }>(lab, 'client', ['roundtrip', '127.0.0.1', '18001', 'x'.repeat(1000), '2000']),
        toolRun<{ bytes: number; sha256: string }>(lab, 'client', ['fetch', '127.0.0.1', '18002']),
        lab.exec(
          'client',
          process.execPath,
          [BIN, 'speedtest', 'dev-box', '--json', '--seconds', '2', '--direction', 'download', '--server', pair.coord.url, '--token', pair.clientToken],
          { timeoutMs: 60_000, env: peerEnv(speedState) },
        ),
        sshSession(lab, pair.coord.url, pair.clientToken, ssh.key),
        sshSession(lab, pair.coord.url, pair.clientToken, ssh.key),
      ]);
      t.diagnostic(`all five finished in ${Math.round(performance.now() - started)} ms`);

      assert.equal(echo.ok, true, `echo through the first forward: ${JSON.stringify(echo)}`);
      assert.equal(fetched.bytes, BYTES, 'every byte through the second forward');
      assert.equal(speed.code, 0, `speedtest failed:\n${speed.stdout}\n${speed.stderr}`);
      const result = JSON.parse(speed.stdout.trim().split('\n').pop()!) as SpeedtestResult;
      assert.equal(result.path, 'direct');
      assert.ok(result.bytes > 0);
      for (const s of [ssh1, ssh2]) {
        assert.equal(s.code, 0, `ssh failed (${s.code}):\n${s.stdout}\n${s.stderr}`);
        assert.equal(s.stdout.trim().split(/\s+/)[0], ZEROS_4M_SHA256);
        // Each proxy is its own node and found its own direct path (its pino lines on ssh's stderr).
        const paths = [...s.stderr.matchAll(/"path":\{"kind":"(direct|relay)"/g)].map((m) => m[1]);
        assert.equal(paths.at(-1), 'direct', `proxy path changes: ${paths.join(' -> ') || 'none'}`);
      }

      // Neither forward was disturbed: both still run, never fell back to the relay, and still carry data.
      for (const f of [echoFwd, bytesFwd]) {
        assert.equal(f.process.exitCode, null, `a forward exited:\n${f.lines.err}`);
        assert.ok(!f.lines.out.some((l) => /path to dev-box: relay/.test(l.line)), `a forward moved to the relay:\n${f.lines.out.map((l) => l.line).join('\n')}`);
      }
      const again = await toolRun<{ ok: boolean }>(lab, 'client', ['roundtrip', '127.0.0.1', '18001', 'after', '10']);
      assert.equal(again.ok, true);

      // The server lists each forward as its own node with its own tunnel and direct path.
      const r = await lab.exec('client', 'curl', ['-sS', '--max-time', '5', '-H', `authorization: Bearer ${adminToken}`, `${pair.coord.url}/api/v1/tunnels`]);
      const tunnels = tunnelsResponse.parse(JSON.parse(r.stdout)).tunnels.filter((x) => x.client === 'laptop');
      t.diagnostic(`tunnels of laptop now: ${tunnels.map((x) => `${x.clientKey?.slice(0, 8)} ${x.paths.client?.kind}`).join(', ')}`);
      assert.equal(tunnels.length, 2, 'the two forwards are still there, one tunnel each');
      assert.equal(new Set(tunnels.map((x) => x.clientKey)).size, 2);
      assert.ok(tunnels.every((x) => x.paths.client?.kind === 'direct'));
    } finally {
      await lab.teardown();
    }
  });

  test('ping with the agent\'s token is refused, names the token it needs, and the agent keeps running', async () => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab);
      const state = mkdtempSync(join(tmpdir(), 'traverse-lab-client-'));
      const wrong = await lab.exec('client', process.execPath, [BIN, 'ping', 'dev-box', '-n', '1', '--server', pair.coord.url, '--token', pair.agentToken], {
        timeoutMs: 30_000,
        env: peerEnv(state),
      });
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /needs a client token .*the token given is the agent token of "dev-box"/);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(pair.agent.exitCode, null, 'the agent still runs');
      const ok = await runPing(lab, 'client', pair.coord.url, pair.clientToken, 'dev-box', ['-n', '2', '--interval', '200']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(ok.pongs.length > 0);
    } finally {
      await lab.teardown();
    }
  });
});
