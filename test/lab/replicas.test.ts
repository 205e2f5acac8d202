// Two `traverse server` replicas on one PostgreSQL, in the NAT lab: the agent connected to
// replica 1, the client to replica 2. Direct where the NATs allow it, through the replica mesh
// where UDP is blocked; a kill -9 of the agent's replica does not break a direct stream, the agent
// moves to the other replica, and a relayed stream resumes once it has.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats, STUN_HOST } from '../../lab/topologies.js';
import { runPing, startAgent } from '../../lab/peers.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from '../../lab/stun-servers.js';
import { collect, exited, forwardPath, lineMatching, startForward, toolRun, toolServer, type StreamPair } from '../../lab/streams-lab.js';
import { labReplicasUnavailable, startLabReplicas, type LabReplicas } from '../../lab/replicas.js';
import type { Lab } from '../../lab/lab.js';
import type { NatKind } from '../../lab/nat.js';
import { requiredByCi } from '../helpers/required.js';

const labReason = await labSkip();
const pgReason = labReplicasUnavailable();
if (!labReason && pgReason && requiredByCi()) throw new Error(`required by TRAVERSE_REQUIRE_LAB=1 but unavailable: ${pgReason}`);
const skip = labReason || pgReason || false;

/** How soon the agent must be connected to the other replica after its own was killed. */
const MOVE_BOUND_MS = 10_000;

interface Setup {
  readonly lab: Lab;
  readonly group: LabReplicas;
  readonly pair: StreamPair;
  readonly agentLines: ReturnType<typeof collect>;
}

/** The lab, STUN, two replicas, tokens; the agent on replica 1 (it falls back to replica 2). */
async function setUp(clientNat: NatKind, agentNat: NatKind): Promise<Setup> {
  const lab = await createLab(pairOfNats(clientNat, agentNat));
  await startTraverseStun(lab, STUN_HOST);
  const group = await startLabReplicas(lab, 2, ['--stun', `${lab.node(STUN_HOST).address}:${TRAVERSE_STUN_PORT}`]);
  const [r1, r2] = group.replicas;
  const agentToken = await group.token(['--agent', 'dev-box']);
  const clientToken = await group.token(['--client', 'laptop', '--allow', 'dev-box']);
  const agent = await startAgent(lab, 'agent', `${r1!.url},${r2!.url}`, agentToken, []);
  const agentLines = collect(agent);
  // The client's node and forward connect to replica 2 first: the pair spans both replicas.
  const pair: StreamPair = { coord: { url: `${r2!.url},${r1!.url}`, url6: null, dataDir: '', process: r2!.process }, clientToken, agentToken, agent };
  return { lab, group, pair, agentLines };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  await s.lab.teardown();
  s.group.stop();
}

function randomFile(bytes: number): { path: string; sha256: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-replica-data-'));
  const path = join(dir, 'data.bin');
  const data = randomBytes(bytes);
  writeFileSync(path, data);
  return { path, dir, sha256: createHash('sha256').update(data).digest('hex') };
}

describe('two replicas in the NAT lab', { skip, concurrency: 1 }, () => {
  test('easy/easy across replicas: direct ping, forward both ways; kill -9 of the agent\'s replica keeps a 100 MB direct stream intact', async (t) => {
    let s: Setup | undefined;
    const file = randomFile(100 * 1024 * 1024);
    try {
      s = await setUp('easy', 'easy');
      const { lab, group, pair, agentLines } = s;
      const [r1, r2] = group.replicas;
      const ping = await runPing(lab, 'client', pair.coord.url, pair.clientToken, 'dev-box', ['-n', '3', '--interval', '200']);
      assert.equal(ping.summary.path, 'direct', `ping path across replicas: ${JSON.stringify(ping.summary)}\n${ping.stderr}`);

      await toolServer(lab, 'agent', ['echo', '9000']);
      // 100 MB paced at 20 MB/s: about 5 s, long enough to kill the replica in the middle.
      await toolServer(lab, 'agent', ['serve-file', '9001', file.path, String(20 * 1024 * 1024)]);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000', '19001:127.0.0.1:9001'], { env: { TRAVERSE_LOG_LEVEL: 'info' } });
      await forwardPath(fwd, 'direct', 15_000);
      const echo = await toolRun<{ ok: boolean }>(lab, 'client', ['roundtrip', '127.0.0.1', '19000', 'both ways', '10'], 20_000);
      assert.equal(echo.ok, true, 'the forward carries data both ways');

      const fetched = toolRun<{ bytes: number; sha256?: string; how: string }>(lab, 'client', ['fetch', '127.0.0.1', '19001'], 90_000);
      await new Promise((r) => setTimeout(r, 1500));
      const killed = performance.now();
      r1!.process.kill('SIGKILL');
      await exited(r1!.process);
      const moved = await lineMatching(agentLines, new RegExp(`coordination server: connected to ${r2!.url.replace(/\./g, '\\.')}`), MOVE_BOUND_MS + 5000, killed, 'agent on replica 2');
      const got = await fetched;
      const lost = await lineMatching(fwd.lines, /^dev-box lost by the coordination server/, 15_000, killed, 'client sees the agent lost');
      const back = await lineMatching(fwd.lines, /^dev-box back$/, 15_000, lost.t, 'client sees the agent back');
      t.diagnostic(
        `after kill -9 of replica 1: agent on replica 2 in ${Math.round(moved.t - killed)} ms; client saw it lost at ${Math.round(lost.t - killed)} ms, back at ${Math.round(back.t - killed)} ms; ` +
          `stream: ${got.bytes} bytes, ${got.how}`,
      );
      assert.ok(moved.t - killed < MOVE_BOUND_MS, `the agent was on replica 2 within ${MOVE_BOUND_MS} ms`);
      assert.equal(got.bytes, 100 * 1024 * 1024);
      assert.equal(got.sha256, file.sha256, 'not a byte lost');
    } finally {
      await tearDown(s);
      rmSync(file.dir, { recursive: true, force: true });
    }
  });

  test('UDP blocked: ping and forward go through the replica mesh; a relayed stream resumes after the agent moves, intact', async (t) => {
    let s: Setup | undefined;
    const file = randomFile(8 * 1024 * 1024);
    try {
      s = await setUp('udp-blocked', 'easy');
      const { lab, group, pair, agentLines } = s;
      const [r1, r2] = group.replicas;
      // --no-tcp-lane: this test is about the mesh, and TCP gets out here, so a TCP lane to the
      // agent's vouched IP would carry the streams instead (tcp-lane.test.ts covers that).
      const ping = await runPing(lab, 'client', pair.coord.url, pair.clientToken, 'dev-box', ['-n', '5', '--interval', '200', '--no-tcp-lane']);
      assert.equal(ping.summary.path, 'relay', `ping path: ${JSON.stringify(ping.summary)}`);
      // The very first ping may be lost: the agent hears of the client's node through the bus (a
      // few ms, more on a loaded database), and a datagram that arrives before is dropped, as a
      // datagram from an unknown key always is. Every later one must get through the mesh.
      assert.ok(ping.pongs.length >= 4 && ping.pongs.every((p) => p.path === 'relay'), `pongs through the mesh: ${JSON.stringify(ping.pongs)}`);

      await toolServer(lab, 'agent', ['echo', '9000']);
      await toolServer(lab, 'agent', ['serve-file', '9001', file.path, String(2 * 1024 * 1024)]);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000', '19001:127.0.0.1:9001'], { env: { TRAVERSE_LOG_LEVEL: 'info' }, args: ['--no-tcp-lane'] });
      await forwardPath(fwd, 'relay', 15_000);
      const echo = await toolRun<{ ok: boolean }>(lab, 'client', ['roundtrip', '127.0.0.1', '19000', 'through the mesh', '10'], 20_000);
      assert.equal(echo.ok, true, 'the forward carries data both ways through the mesh');

      // 8 MB at 2 MB/s over the relay: kill the agent's replica 1.5 s in.
      const fetched = toolRun<{ bytes: number; sha256?: string; how: string }>(lab, 'client', ['fetch', '127.0.0.1', '19001'], 90_000);
      await new Promise((r) => setTimeout(r, 1500));
      const killed = performance.now();
      r1!.process.kill('SIGKILL');
      const moved = await lineMatching(agentLines, new RegExp(`coordination server: connected to ${r2!.url.replace(/\./g, '\\.')}`), MOVE_BOUND_MS + 5000, killed, 'agent on replica 2');
      const got = await fetched;
      t.diagnostic(`relayed stream: agent on replica 2 ${Math.round(moved.t - killed)} ms after kill -9; ${got.bytes} bytes, ${got.how}`);
      assert.equal(got.bytes, 8 * 1024 * 1024);
      assert.equal(got.sha256, file.sha256, 'the relayed stream resumed intact');
    } finally {
      await tearDown(s);
      rmSync(file.dir, { recursive: true, force: true });
    }
  });
});
