// Peer-engine scenarios beyond the matrix, each in its own lab: the coordination server restarting
// under live peers, the agent's NAT forgetting its mappings mid-session, and a peer the server
// did not vouch for trying to make the agent answer.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats, STUN_HOST } from '../../lab/topologies.js';
import { INTERNET } from '../../lab/spec.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from '../../lab/stun-servers.js';
import { createToken, runPing, spawnPing, startAgent, startCoordinator, type LabCoordinator } from '../../lab/peers.js';
import type { Lab, LabProcess } from '../../lab/lab.js';
import { collect } from '../../lab/streams-lab.js';
import { NodeKey } from '../../src/identity/node-key.js';

const skip = await labSkip();
const PROBER = fileURLToPath(new URL('../../lab/disco-prober.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null> | T | null, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** GET on the coordinator's HTTP API from inside the lab (the test process is outside it). */
async function api(lab: Lab, coord: LabCoordinator, path: string, token: string): Promise<unknown> {
  const script = `fetch(${JSON.stringify(coord.url + path)},{headers:{authorization:${JSON.stringify(`Bearer ${token}`)}}}).then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(e.message);process.exit(1)})`;
  const r = await lab.exec('coord', process.execPath, ['-e', script], { timeoutMs: 5000 });
  if (r.code !== 0) return null;
  return JSON.parse(r.stdout) as unknown;
}

interface Pong {
  t: number;
  seq: number;
  path: 'direct' | 'relay';
  latencyMs: number;
}

function pongsOf(lines: { t: number; line: string }[]): Pong[] {
  return lines
    .filter((l) => l.line.startsWith('{') && l.line.includes('"seq"'))
    .map((l) => ({ t: l.t, ...(JSON.parse(l.line) as Omit<Pong, 't'>) }));
}

/** An easy/easy lab with STUN, a coordinator, tokens for dev-box and laptop, and the agent running. */
async function easyPair(lab: Lab, agentArgs: string[] = []): Promise<{ coord: LabCoordinator; serverArgs: string[]; clientToken: string; agent: LabProcess; agentLines: { t: number; line: string }[] }> {
  await startTraverseStun(lab, STUN_HOST);
  const serverArgs = ['--stun', `${lab.node(STUN_HOST).address}:${TRAVERSE_STUN_PORT}`];
  const coord = await startCoordinator(lab, serverArgs);
  const agentToken = await createToken(coord.dataDir, ['--agent', 'dev-box']);
  const clientToken = await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']);
  const agent = await startAgent(lab, 'agent', coord.url, agentToken, agentArgs);
  return { coord, serverArgs, clientToken, agent, agentLines: collect(agent).out };
}

describe('peer scenarios', { skip, concurrency: 3 }, () => {
  test('the coordination server restarts under live peers: direct pongs never stop, both peers come back and republish', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const { coord, serverArgs, clientToken, agentLines } = await easyPair(lab);
      const ping = spawnPing(lab, 'client', coord.url, clientToken, 'dev-box', ['-n', '80', '--interval', '200', '--timeout', '1000']);
      const lines = collect(ping).out;
      await until('a direct pong', 10_000, () => (pongsOf(lines).some((p) => p.path === 'direct') ? true : null));

      const down = performance.now();
      coord.process.kill('SIGTERM');
      if (coord.process.exitCode === null) await new Promise((r) => coord.process.once('exit', r));
      await until('the agent noticing', 5000, () => (agentLines.some((l) => l.t > down && /coordination server: reconnecting/.test(l.line)) ? true : null));
      await sleep(3000); // a few seconds of outage
      const restarted = await startCoordinator(lab, serverArgs, coord.dataDir);
      const up = performance.now();

      // Both reconnected: the client asked for its tunnel again, the agent is online and republished.
      const tunnels = await until('the tunnel back on the new server, with both paths reported', 10_000, async () => {
        const v = (await api(lab, restarted, '/api/v1/tunnels', clientToken)) as { tunnels: { agent: string; agentOnline: boolean; paths: Record<string, { kind: string } | null> }[] } | null;
        // Paths are reported again by both sides once the tunnel is back.
        const tun = v?.tunnels.find((x) => x.agent === 'dev-box' && x.agentOnline && x.paths.client !== null && x.paths.agent !== null);
        return tun ?? null;
      });
      const back = performance.now();
      const peers = (await api(lab, restarted, '/api/v1/peers', clientToken)) as { peers: { name: string; node: { endpoints: string[] } | null }[] };
      const agentPeer = peers.peers.find((p) => p.name === 'dev-box');
      assert.ok(agentPeer?.node && agentPeer.node.endpoints.length > 0, `the agent republished its endpoints: ${JSON.stringify(peers)}`);
      assert.equal(tunnels.paths.client?.kind, 'direct');
      assert.equal(tunnels.paths.agent?.kind, 'direct');

      await sleep(1000);
      const during = pongsOf(lines).filter((p) => p.t > down && p.t < up);
      const after = pongsOf(lines).filter((p) => p.t > up);
      t.diagnostic(`outage ${Math.round(up - down)} ms; tunnel and agent back ${Math.round(back - up)} ms after restart; ${during.length} pongs during the outage; paths ${JSON.stringify(tunnels.paths)}`);
      assert.ok(during.length >= 10, `pongs kept coming during the outage: ${during.length}`);
      assert.ok(during.every((p) => p.path === 'direct'), 'all of them direct');
      const seqs = pongsOf(lines).filter((p) => p.t > down).map((p) => p.seq);
      assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), `no ping lost across the restart: ${seqs.join(',')}`);
      assert.ok(after.length > 0 && after.every((p) => p.path === 'direct'));
      ping.kill('SIGTERM');
    } finally {
      await lab.teardown();
    }
  });

  test("the agent's NAT forgets its mappings mid-session: the path comes back to direct within a bound", async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const { coord, clientToken, agentLines } = await easyPair(lab);
      const ping = spawnPing(lab, 'client', coord.url, clientToken, 'dev-box', ['-n', '100', '--interval', '200', '--timeout', '1000']);
      const lines = collect(ping).out;
      await until('a direct pong', 10_000, () => (pongsOf(lines).some((p) => p.path === 'direct') ? true : null));
      await sleep(1000);

      const before = (await lab.conntrackList('ragent', 'udp')).length;
      const flushed = performance.now();
      await lab.conntrackFlush('ragent');
      // Recovered: three direct pongs in a row after the flush.
      const recovered = await until('three direct pongs in a row after the flush', 15_000, () => {
        const p = pongsOf(lines).filter((x) => x.t > flushed);
        for (let i = 2; i < p.length; i++) if (p[i - 2]!.path === 'direct' && p[i - 1]!.path === 'direct' && p[i]!.path === 'direct') return p[i - 2]!;
        return null;
      });
      await sleep(1000);
      const afterFlush = pongsOf(lines).filter((x) => x.t > flushed);
      const sent = Math.max(...pongsOf(lines).map((p) => p.seq));
      const answeredSeqs = new Set(pongsOf(lines).map((p) => p.seq));
      const lost = Array.from({ length: sent + 1 }, (_, i) => i).filter((i) => !answeredSeqs.has(i) && pongsOf(lines).some((p) => p.seq > i && p.t > flushed));
      const relayed = afterFlush.filter((p) => p.path === 'relay').length;
      const agentPaths = agentLines.filter((l) => l.t > flushed && /^tunnel to/.test(l.line)).map((l) => l.line);
      t.diagnostic(
        `${before} UDP conntrack entries flushed; direct again ${Math.round(recovered.t - flushed)} ms after the flush; ` +
          `${lost.length} ping(s) unanswered, ${relayed} relayed pong(s) after the flush; agent path changes: ${JSON.stringify(agentPaths)}`,
      );
      assert.ok(recovered.t - flushed < 10_000, 'direct again within 10 s');
      const tail = afterFlush.filter((p) => p.t >= recovered.t);
      assert.ok(tail.length >= 3 && tail.every((p) => p.path === 'direct'), `every pong after recovery is direct: ${JSON.stringify(tail)}`);
      ping.kill('SIGTERM');
    } finally {
      await lab.teardown();
    }
  });

  test('a peer the server did not vouch for: refused by the server, and its sealed pings to the agent go unanswered', async (t) => {
    // The agent sits behind a full-cone NAT, so anyone's packets to its public endpoint reach
    // its socket: what keeps a stranger out is the agent, not its NAT.
    const spec = pairOfNats('easy', 'full-cone');
    const lab = await createLab({ ...spec, hosts: [...spec.hosts, { name: 'intruder', on: INTERNET }] });
    try {
      const agentKeyFile = join(mkdtempSync(join(tmpdir(), 'traverse-lab-agentkey-')), 'agent.key');
      const agentKey = NodeKey.loadOrCreate(agentKeyFile);
      const { coord, clientToken } = await easyPair(lab, ['--key-file', agentKeyFile]);
      const endpoints = ((await api(lab, coord, '/api/v1/peers', clientToken)) as { peers: { name: string; node: { endpoints: string[] } | null }[] }).peers.find(
        (p) => p.name === 'dev-box',
      )?.node?.endpoints;
      const wan = lab.router('ragent').address;
      const publicEndpoint = endpoints?.find((e) => e.startsWith(`${wan}:`));
      assert.ok(publicEndpoint, `the agent published a public endpoint on ${wan}: ${JSON.stringify(endpoints)}`);

      // 1. A second client with a valid token but no rule for dev-box: the server refuses it.
      const intruderToken = await createToken(coord.dataDir, ['--client', 'intruder']);
      const refused = await runPing(lab, 'intruder', coord.url, intruderToken, 'dev-box', ['-n', '1']).catch((e: Error) => e);
      assert.ok(refused instanceof Error, 'no summary: the command failed before pinging');
      assert.match(refused.message, /refused a tunnel to "dev-box": not allowed/);
      assert.match(refused.message, /exit 1/);

      // 2. Positive control: the legitimate client's key, from the intruder's host, IS answered
      //    while the client holds its tunnel (so the packets do reach the agent).
      const clientKeyFile = join(mkdtempSync(join(tmpdir(), 'traverse-lab-clientkey-')), 'client.key');
      const legit = spawnPing(lab, 'client', coord.url, clientToken, 'dev-box', ['-n', '30', '--interval', '200', '--key-file', clientKeyFile]);
      const legitLines = collect(legit).out;
      await until('the legitimate client pinging', 10_000, () => (pongsOf(legitLines).length > 0 ? true : null));
      const control = await lab.exec('intruder', process.execPath, [PROBER, agentKey.publicHex, publicEndpoint, clientKeyFile, '3', '1000'], { timeoutMs: 10_000 });
      const ctl = JSON.parse(control.stdout) as { pongs: number };
      assert.ok(ctl.pongs >= 1, `a vouched key is answered from the intruder's host: ${control.stdout}${control.stderr}`);

      // 3. The stranger's own key: nothing comes back, not one datagram.
      const probe = await lab.exec('intruder', process.execPath, [PROBER, agentKey.publicHex, publicEndpoint, '-', '10', '1500'], { timeoutMs: 10_000 });
      const got = JSON.parse(probe.stdout) as { sent: number; datagrams: number; pongs: number };
      t.diagnostic(`agent ${publicEndpoint}: vouched key got ${ctl.pongs} pong(s) for 3 pings; stranger got ${got.datagrams} datagram(s) for ${got.sent} pings`);
      assert.equal(got.datagrams, 0, probe.stdout);
      legit.kill('SIGTERM');
    } finally {
      await lab.teardown();
    }
  });
});
