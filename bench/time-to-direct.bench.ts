// Time to a direct path, easy NAT on both sides, in the NAT lab (needs root): one lab with the
// coordination server, a STUN server and the agent; then BENCH_RUNS runs of `traverse ping`, each a
// new client process with a new key. For every run:
//   - wall:        from spawning the process to its first direct pong on stdout (includes Node's start-up)
//   - in process:  the command's own timeToDirectMs (from the start of the command)
//   - after first message: timeToDirectMs - publishedMs, i.e. from the client's first coordination
//                  message (its node, then at once its tunnel request) to the path becoming direct
// The lab's round trip is the median latency of the direct pongs; the last figure is also given in
// round trips (target: within 3 RTTs of the first coordination message). Then the same with 50 ms
// of added round trip: 25 ms each way on the agent's side only (the link between the agent and its
// router), so client<->agent and agent<->coordinator gain 50 ms of RTT, client<->coordinator none.
// The delay is tc netem where the kernel has it, else the lab's NFQUEUE helper (lab/netem.ts).
//
//   npm run bench:time-to-direct      (BENCH_RUNS, default 10)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailability } from '../lab/availability.js';
import { createLab } from '../lab/topology.js';
import { pairOfNats, STUN_HOST } from '../lab/topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from '../lab/stun-servers.js';
import { createToken, peerEnv, startAgent, startCoordinator } from '../lab/peers.js';
import { ImpairmentUnsupportedError, netemAvailable } from '../lab/netem.js';
import type { Lab } from '../lab/lab.js';
import { BIN } from '../test/helpers/cli.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);

interface Run {
  wallMs: number;
  inProcessMs: number;
  afterFirstMessageMs: number;
  directRttMs: number;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** One `traverse ping` run: spawn, wait for it to finish, read its JSON lines. */
async function oneRun(lab: Lab, url: string, token: string): Promise<Run> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-bench-client-'));
  const t0 = performance.now();
  const child = lab.spawn('client', process.execPath, [BIN, 'ping', 'dev-box', '--server', url, '--token', token, '--json', '-n', '6', '--interval', '100', '--timeout', '1000'], {
    env: peerEnv(state),
  });
  let out = '';
  let firstDirect: number | null = null;
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (firstDirect === null && /"path":"direct"/.test(out)) firstDirect = performance.now() - t0;
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const lines = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const summary = lines.find((l) => l.summary === true) as { timeToDirectMs: number | null; publishedMs: number } | undefined;
  if (code !== 0 || !summary || summary.timeToDirectMs === null || firstDirect === null) {
    throw new Error(`ping run did not go direct (exit ${code}):\n${out}\n${err}`);
  }
  const direct = lines.filter((l) => l.path === 'direct').map((l) => l.latencyMs as number);
  return {
    wallMs: firstDirect,
    inProcessMs: summary.timeToDirectMs,
    afterFirstMessageMs: summary.timeToDirectMs - summary.publishedMs,
    directRttMs: median(direct),
  };
}

async function series(lab: Lab, url: string, token: string, label: string): Promise<void> {
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await oneRun(lab, url, token));
  const rtt = median(runs.map((r) => r.directRttMs));
  const row = (name: string, xs: number[]): string =>
    `  ${name.padEnd(44)} median ${median(xs).toFixed(0).padStart(5)} ms   p90 ${quantile(xs, 0.9).toFixed(0).padStart(5)} ms`;
  console.log(`\n${label}: ${RUNS} runs, lab round trip client<->agent (direct pong) median ${rtt.toFixed(2)} ms`);
  console.log(row('wall: spawn -> first direct pong', runs.map((r) => r.wallMs)));
  console.log(row('in process: command start -> path direct', runs.map((r) => r.inProcessMs)));
  const after = runs.map((r) => r.afterFirstMessageMs);
  console.log(row('after the first coordination message', after));
  console.log(
    `  in round trips to the agent: median ${(median(after) / rtt).toFixed(1)} RTT, p90 ${(quantile(after, 0.9) / rtt).toFixed(1)} RTT (target: 3)` +
      (rtt < 5 ? '  [the lab RTT is far below the engine\'s 25 ms timer tick and process scheduling, so RTT units say little here]' : ''),
  );
  console.log(`  raw after-first-message ms: ${after.join(' ')}`);
}

async function main(): Promise<void> {
  const a = await labAvailability();
  if (!a.available) {
    console.log(`time-to-direct benchmark skipped: ${a.reason}`);
    return;
  }
  const lab = await createLab(pairOfNats('easy', 'easy'));
  try {
    await startTraverseStun(lab, STUN_HOST);
    const coord = await startCoordinator(lab, ['--stun', `${lab.node(STUN_HOST).address}:${TRAVERSE_STUN_PORT}`]);
    const agentToken = await createToken(coord.dataDir, ['--agent', 'dev-box']);
    const clientToken = await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']);
    await startAgent(lab, 'agent', coord.url, agentToken);
    console.log(`time to direct, easy NAT / easy NAT, traverse ping as a new client each run`);
    await series(lab, coord.url, clientToken, 'added RTT 0 ms');

    // 50 ms more round trip: 25 ms each way on the agent's link to its router.
    try {
      await lab.impair('agent', { delayMs: 25 }, 'both');
    } catch (err) {
      if (!(err instanceof ImpairmentUnsupportedError)) throw err;
      console.log(`\nadded RTT 50 ms: not measurable here: ${err.message}`);
      return;
    }
    const how = (await netemAvailable(lab.node('agent').ns)) ? 'tc netem' : 'NFQUEUE delay helper, no sch_netem here';
    await series(lab, coord.url, clientToken, `added RTT 50 ms (25 ms each way on the agent's link; ${how})`);
    await lab.clearImpairment('agent');
  } finally {
    await lab.teardown();
  }
}

await main();
