// Streams in the NAT lab (needs root): one TCP connection through `traverse forward`, against
// plain TCP and `ssh -L` over the same lab path, measured in the same run.
//
// Direct (easy/easy): the agent's router gets a TCP port forward (DNAT from its WAN address to
// the agent), so "plain TCP" and "ssh -L" go client -> client's NAT -> internet segment -> agent's
// router -> agent: the same hops, NATs and links as the hole-punched UDP path that the forward
// uses. The same pair relayed: a second forward with --disable-direct, through the server (its
// relay rate unlimited), on a relay lane and on relayed datagrams, with the CPU per GiB of the peers
// and of the server apart; its ratio is to the direct
// forward of the same run. Relay (client behind UDP-blocked, the server's default relay rate):
// the forward's bytes go client -> coordination server (a relay lane) -> agent, or over a TCP
// lane to the agent's address where its NAT lets one in, and with --disable-direct on a relay
// lane for sure; "plain TCP" is a connection from the client to a server on the coordination
// server's host, i.e. the first leg of the relayed path.
//
// For each: BENCH_RUNS downloads of BENCH_BYTES (relay: BENCH_RELAY_BYTES) from a server that
// sends a repeated 1 MiB random block, timed by the receiver (a counting sink) from connect to
// FIN; median Gbit/s, and the CPU seconds the tunnel's processes spent per GiB (the machine's load
// skews throughput, much less the cost per byte). iperf3 for 4 s and 12 s through ssh -L and the forward. Then 1-byte
// ping-pong round trips (BENCH_ROUNDS) through the forward and
// over plain TCP on the same path, and the agent's RSS with 100 open idle forwarded connections.
//
//   npm run bench:streams     (BENCH_RUNS=3, BENCH_BYTES=1073741824, BENCH_RELAY_BYTES=268435456, BENCH_ROUNDS=1000,
//                              BENCH_IPERF_RUNS=3, BENCH_SSH_RUNS=5, BENCH_PARTS=cli,direct,relay)
//
// BENCH_PARTS=setup runs only the set-up (the easy/easy pair, sshd behind the agent's router):
// seconds instead of minutes. BENCH_BASELINE_BIN=/other/clone/bin/traverse.js times that
// traverse's proxy too, in the same runs (alternating), e.g. a build of main before a change.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/helpers/cli.js';
import { peerEnv } from '../lab/peers.js';
import { labAvailability } from '../lab/availability.js';
import { createLab } from '../lab/topology.js';
import { COORD_ADDRESS, COORD_HOST, pairOfNats } from '../lab/topologies.js';
import { runOk } from '../lab/exec.js';
import { collect, forwardPath, sleep, sshFixture, sshThrough, startForward, startSshd, streamPair, TOOL, toolRun, toolServer, type StreamPair } from '../lab/streams-lab.js';
import type { Lab } from '../lab/lab.js';
import { cpuSeconds } from './cpu.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BYTES = Number(process.env.BENCH_BYTES ?? 1 << 30);
const RELAY_BYTES = Number(process.env.BENCH_RELAY_BYTES ?? 256 << 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1000);
/** iperf3 runs of each length each way (median). */
const IPERF_RUNS = Number(process.env.BENCH_IPERF_RUNS ?? 3);
/** ssh connections timed each way (median). */
const SSH_RUNS = Number(process.env.BENCH_SSH_RUNS ?? 5);
/** Which parts to run: "cli", "direct" (with set-up and the same pair relayed), "relay"; all by default. */
const BASELINE_BIN = process.env.BENCH_BASELINE_BIN;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'cli,direct,relay').split(',').map((p) => p.trim()));

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const gbit = (bytes: number, ms: number): number => (bytes * 8) / (ms / 1000) / 1e9;

interface Fetched {
  bytes: number;
  ms: number;
  how: string;
}

/** RUNS downloads from host:port in the client's namespace; Gbit/s per run. */
async function throughput(lab: Lab, host: string, port: number, bytes: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await toolRun<Fetched>(lab, 'client', ['fetch', host, String(port)], 300_000);
    if (r.how !== 'end' || r.bytes !== bytes) throw new Error(`fetch from ${host}:${port}: ${JSON.stringify(r)}`);
    out.push(gbit(r.bytes, r.ms));
  }
  return out;
}

/** Median and 99th percentile of ROUNDS 1-byte round trips on an echo server at host:port. */
async function pingpong(lab: Lab, host: string, port: number): Promise<{ p50: number; p99: number }> {
  const r = await toolRun<{ rtts: number[] }>(lab, 'client', ['pingpong', host, String(port), String(ROUNDS)], 120_000);
  const s = [...r.rtts].slice(10).sort((a, b) => a - b); // the first rounds include the stream's opening
  return { p50: median(s), p99: s[Math.floor(s.length * 0.99)]! };
}

/** The pid of the sshd started with this config file. */
function sshdPid(config: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // sshd rewrites its title ("sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ..."): one string.
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('sshd') && cmd.includes(config)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no sshd running with ${config}`);
}

/** throughput(), and the CPU seconds per GiB the processes `roots` (and children) spent on it. */
async function throughputAndCpu(lab: Lab, host: string, port: number, bytes: number, roots: readonly number[]): Promise<{ gbit: number[]; cpuPerGiB: number }> {
  const before = cpuSeconds(roots);
  const gbit = await throughput(lab, host, port, bytes);
  return { gbit, cpuPerGiB: (cpuSeconds(roots) - before) / ((RUNS * bytes) / 2 ** 30) };
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

interface Row {
  what: string;
  value: string;
  ratio: string;
}

const fmtG = (xs: number[]): string => `${median(xs).toFixed(2)} Gbit/s (runs ${xs.map((x) => x.toFixed(2)).join(', ')})`;
const fmtMs = (l: { p50: number; p99: number }): string => `p50 ${(l.p50 * 1000).toFixed(0)} us, p99 ${(l.p99 * 1000).toFixed(0)} us`;

async function direct(rows: Row[]): Promise<void> {
  const lab = await createLab(pairOfNats('easy', 'easy'));
  try {
    // Unlimited relay: the relayed row below measures what the relay lane itself can carry.
    const pair = await streamPair(lab, [], ['--relay-rate', '0']);
    const agentLan = lab.node('agent').address;
    const ragent = lab.router('ragent');
    // The benchmark's port forward on the agent's router: bulk (9000), echo (9001), sshd (2222).
    await runOk('ip', ['netns', 'exec', ragent.ns, 'nft', 'add', 'rule', 'ip', 'lab', 'prerouting', 'iifname', ragent.ifName, 'tcp', 'dport', '{ 9000, 9001, 2222 }', 'dnat', 'to', agentLan]);
    await runOk('ip', ['netns', 'exec', ragent.ns, 'nft', 'add', 'rule', 'ip', 'lab', 'forward', 'ct', 'status', 'dnat', 'accept']);
    await toolServer(lab, 'agent', ['serve-bytes', '9000', String(BYTES), '0.0.0.0']);
    await toolServer(lab, 'agent', ['serve-bytes', '9002', String(RELAY_BYTES)]);
    await toolServer(lab, 'agent', ['echo', '9001', '0.0.0.0']);
    const ssh = await sshFixture(2222, '0.0.0.0');
    await startSshd(lab, 'agent', ssh.config, 2222);
    const tunnel = lab.spawn('client', 'ssh', [
      '-N', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR',
      '-i', ssh.key, '-p', '2222', '-L', '127.0.0.1:29000:127.0.0.1:9000', '-L', '127.0.0.1:25201:127.0.0.1:5201', `root@${ragent.address}`,
    ]);
    const tl = collect(tunnel);
    lab.spawn('agent', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', '5201']);
    const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000', '19001:127.0.0.1:9001', '15201:127.0.0.1:5201']);
    await forwardPath(fwd, 'direct', 10_000);
    for (let i = 0; !(await lab.exec('client', 'ss', ['-Hntl'])).stdout.includes('127.0.0.1:29000 '); i++) {
      if (i > 100) throw new Error(`ssh -L did not listen: ${tl.err}`);
      await sleep(100);
    }
    // Memory first: after gigabytes of transfers the agent's heap is in another state (RSS
    // shrinks as the collector gives pages back), which would hide what 100 streams cost.
    await memory(lab, pair, rows);
    const plain = await throughput(lab, ragent.address, 9000, BYTES);
    const sshCost = await throughputAndCpu(lab, '127.0.0.1', 29000, BYTES, [tunnel.pid!, sshdPid(ssh.config)]);
    const travCost = await throughputAndCpu(lab, '127.0.0.1', 19000, BYTES, [pair.agent.pid!, fwd.process.pid!]);
    const sshL = sshCost.gbit;
    const trav = travCost.gbit;
    const path = fwd.lines.out.at(-1)?.line ?? '';
    if (!/direct/.test(path)) throw new Error(`the forward is not direct: ${path}`);
    rows.push({ what: `direct, plain TCP (${(BYTES / 2 ** 20).toFixed(0)} MiB, via port forward on the agent's NAT)`, value: fmtG(plain), ratio: '' });
    rows.push({ what: 'direct, ssh -L (same path)', value: fmtG(sshL), ratio: `${(median(sshL) / median(plain)).toFixed(2)}x plain` });
    rows.push({
      what: 'direct, traverse forward',
      value: fmtG(trav),
      ratio: `${(median(trav) / median(sshL)).toFixed(2)}x ssh -L, ${(median(trav) / median(plain)).toFixed(2)}x plain`,
    });
    rows.push({ what: 'direct, CPU per GiB moved, ssh -L (ssh and sshd)', value: `${sshCost.cpuPerGiB.toFixed(2)} s`, ratio: '' });
    rows.push({
      what: 'direct, CPU per GiB moved, traverse forward (forward and agent)',
      value: `${travCost.cpuPerGiB.toFixed(2)} s`,
      ratio: `${(travCost.cpuPerGiB / sshCost.cpuPerGiB).toFixed(2)}x ssh -L (lower is better)`,
    });

    await iperf(lab, rows);
    await setup(lab, pair, ssh.key, ragent.address, rows);

    const lp = await pingpong(lab, ragent.address, 9001);
    const lt = await pingpong(lab, '127.0.0.1', 19001);
    rows.push({ what: `direct, 1-byte round trip, plain TCP (${ROUNDS} rounds)`, value: fmtMs(lp), ratio: '' });
    rows.push({ what: 'direct, 1-byte round trip, traverse forward', value: fmtMs(lt), ratio: `${(lt.p50 / lp.p50).toFixed(2)}x plain (p50)` });

    // The same pair, relayed: a second forward with --disable-direct (the server's relay rate is 0,
    // unlimited), on a relay lane and on relayed datagrams (--no-relay-lane).
    for (const [label, args, port, target, bytes] of [
      ['relay lane', ['--disable-direct'], 19100, 9000, BYTES],
      ['relayed datagrams (--no-relay-lane)', ['--disable-direct', '--no-relay-lane'], 19200, 9002, RELAY_BYTES],
    ] as const) {
      const rf = await startForward(lab, pair, [`${port}:127.0.0.1:${target}`], { args: [...args] });
      await forwardPath(rf, 'relay', 1000);
      // The peers' CPU per GiB, and the server's apart: what relaying adds to the direct cost.
      const peers = [pair.agent.pid!, rf.process.pid!];
      const server = [pair.coord.process.pid!];
      const before = [cpuSeconds(peers), cpuSeconds(server)] as const;
      const relayed = await throughput(lab, '127.0.0.1', port, bytes);
      const gib = (RUNS * bytes) / 2 ** 30;
      const peersCpu = (cpuSeconds(peers) - before[0]) / gib;
      const serverCpu = (cpuSeconds(server) - before[1]) / gib;
      rf.process.kill('SIGTERM');
      rows.push({
        what: `same pair relayed, ${label}, --relay-rate 0 (${(bytes / 2 ** 20).toFixed(0)} MiB)`,
        value: fmtG(relayed),
        ratio: `${(median(relayed) / median(trav)).toFixed(2)}x direct forward, ${(median(relayed) / median(plain)).toFixed(2)}x plain`,
      });
      rows.push({
        what: `same pair relayed, ${label}, CPU per GiB (forward and agent; server)`,
        value: `${peersCpu.toFixed(2)} s; server ${serverCpu.toFixed(2)} s`,
        ratio: `${((peersCpu + serverCpu) / travCost.cpuPerGiB).toFixed(2)}x the direct forward's (lower is better)`,
      });
    }
  } finally {
    await lab.teardown();
  }
}

/** One iperf3 client run of `seconds` to 127.0.0.1:port in the client's namespace; Gbit/s received. */
async function iperfRun(lab: Lab, port: number, seconds: number): Promise<number> {
  const r = await lab.exec('client', 'iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`iperf3 -c 127.0.0.1 -p ${port}: ${r.stdout.slice(-500)} ${r.stderr}`);
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

/**
 * iperf3 (one data connection beside its idle control connection, as a user would run it) for 4 s
 * and 12 s, through `ssh -L` and through `traverse forward`, alternating, IPERF_RUNS each.
 */
async function iperf(lab: Lab, rows: Row[]): Promise<void> {
  for (const seconds of [4, 12]) {
    const sshL: number[] = [];
    const trav: number[] = [];
    for (let i = 0; i < IPERF_RUNS; i++) {
      sshL.push(await iperfRun(lab, 25201, seconds));
      trav.push(await iperfRun(lab, 15201, seconds));
    }
    rows.push({ what: `direct, iperf3 -t ${seconds}, ssh -L`, value: fmtG(sshL), ratio: '' });
    rows.push({ what: `direct, iperf3 -t ${seconds}, traverse forward`, value: fmtG(trav), ratio: `${(median(trav) / median(sshL)).toFixed(2)}x ssh -L (target: 1.0x)` });
  }
}

/**
 * Set-up: `ssh ... true` through `traverse proxy` (a new client process, as ssh runs it) against
 * plain ssh to the same sshd over the same path (the agent router's port forward), SSH_RUNS each,
 * alternating.
 */
async function setup(lab: Lab, pair: StreamPair, key: string, agentWan: string, rows: Row[]): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-bench-proxy-'));
  const env = { ...peerEnv(state), TRAVERSE_SERVER: pair.coord.url, TRAVERSE_TOKEN: pair.clientToken };
  const proxy = `${process.execPath} ${BIN} proxy dev-box 127.0.0.1:2222`;
  const baseline = BASELINE_BIN ? `${process.execPath} ${BASELINE_BIN} proxy dev-box 127.0.0.1:2222` : null;
  const viaBaseline: number[] = [];
  const plainArgs = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', key, '-p', '2222', `root@${agentWan}`, 'true'];
  const viaProxy: number[] = [];
  const plain: number[] = [];
  for (let i = 0; i < SSH_RUNS; i++) {
    let t = performance.now();
    const p = await lab.exec('client', 'ssh', plainArgs, { timeoutMs: 30_000 });
    plain.push(performance.now() - t);
    if (p.code !== 0) throw new Error(`plain ssh failed: ${p.stderr}`);
    t = performance.now();
    const v = await sshThrough(lab, proxy, key, 'true', { timeoutMs: 30_000, env });
    viaProxy.push(performance.now() - t);
    if (v.code !== 0) throw new Error(`ssh through traverse proxy failed: ${v.stderr}`);
    // TRAVERSE_TRACE=1 (passed on to the proxy): where its set-up time went, run by run.
    if (process.env.TRAVERSE_TRACE === '1') process.stderr.write(`set-up run ${i + 1}:\n${v.stderr}`);
    if (!baseline) continue;
    t = performance.now();
    const b = await sshThrough(lab, baseline, key, 'true', { timeoutMs: 30_000, env });
    viaBaseline.push(performance.now() - t);
    if (b.code !== 0) throw new Error(`ssh through the baseline's traverse proxy failed: ${b.stderr}`);
  }
  const ms = (xs: number[]): string => `${median(xs).toFixed(0)} ms (runs ${xs.map((x) => x.toFixed(0)).join(', ')})`;
  rows.push({ what: `set-up, plain ssh ... true (${SSH_RUNS} runs)`, value: ms(plain), ratio: '' });
  rows.push({
    what: 'set-up, ssh ... true through traverse proxy',
    value: ms(viaProxy),
    ratio: `+${(median(viaProxy) - median(plain)).toFixed(0)} ms over plain ssh (target: within 250 ms)`,
  });
  if (baseline) {
    rows.push({
      what: `set-up, ssh ... true through the baseline's proxy (${BASELINE_BIN})`,
      value: ms(viaBaseline),
      ratio: `+${(median(viaBaseline) - median(plain)).toFixed(0)} ms over plain ssh`,
    });
  }
}

/** Only the set-up, on the direct part's easy/easy pair (BENCH_PARTS=setup). */
async function setupOnly(rows: Row[]): Promise<void> {
  const lab = await createLab(pairOfNats('easy', 'easy'));
  try {
    const pair = await streamPair(lab, []);
    const ragent = lab.router('ragent');
    await runOk('ip', ['netns', 'exec', ragent.ns, 'nft', 'add', 'rule', 'ip', 'lab', 'prerouting', 'iifname', ragent.ifName, 'tcp', 'dport', '2222', 'dnat', 'to', lab.node('agent').address]);
    await runOk('ip', ['netns', 'exec', ragent.ns, 'nft', 'add', 'rule', 'ip', 'lab', 'forward', 'ct', 'status', 'dnat', 'accept']);
    const ssh = await sshFixture(2222, '0.0.0.0');
    await startSshd(lab, 'agent', ssh.config, 2222);
    await setup(lab, pair, ssh.key, ragent.address, rows);
  } finally {
    await lab.teardown();
  }
}

/** CLI start: `traverse --help` against `node -e 0`, 5 runs each, alternating (outside the lab). */
function cliStart(rows: Row[]): void {
  const time = (args: string[]): number => {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
    return performance.now() - t;
  };
  const node: number[] = [];
  const help: number[] = [];
  for (let i = 0; i < 5; i++) {
    node.push(time(['-e', '0']));
    help.push(time([BIN, '--help']));
  }
  rows.push({ what: 'CLI start, node -e 0 (5 runs)', value: `${median(node).toFixed(0)} ms`, ratio: '' });
  rows.push({ what: 'CLI start, traverse --help', value: `${median(help).toFixed(0)} ms`, ratio: `${(median(help) / median(node)).toFixed(2)}x node -e 0 (target: within 2x)` });
}

async function memory(lab: Lab, pair: StreamPair, rows: Row[]): Promise<void> {
  const pid = pair.agent.pid!;
  await sleep(1000);
  const before = rssKb(pid);
  const holder = lab.spawn('client', process.execPath, [TOOL, 'hold-many', '127.0.0.1', '19001', '100']);
  const hl = collect(holder);
  for (let i = 0; !hl.out.some((l) => l.line === 'open'); i++) {
    if (i > 300) throw new Error(`100 connections did not open: ${hl.out.map((l) => l.line).join('\n')} ${hl.err}`);
    await sleep(100);
  }
  await sleep(3000);
  const after = rssKb(pid);
  holder.kill('SIGTERM');
  rows.push({
    what: 'agent RSS, 100 open idle forwarded connections',
    value: `+${((after - before) / 1024).toFixed(1)} MiB (${(before / 1024).toFixed(1)} -> ${(after / 1024).toFixed(1)} MiB)`,
    ratio: `${((after - before) / 100).toFixed(0)} KiB per stream`,
  });
}

async function relay(rows: Row[]): Promise<void> {
  const lab = await createLab(pairOfNats('udp-blocked', 'easy'));
  try {
    const pair = await streamPair(lab);
    await toolServer(lab, 'agent', ['serve-bytes', '9000', String(RELAY_BYTES)]);
    await toolServer(lab, 'agent', ['echo', '9001']);
    await toolServer(lab, COORD_HOST, ['serve-bytes', '9100', String(RELAY_BYTES), '0.0.0.0']);
    await toolServer(lab, COORD_HOST, ['echo', '9101', '0.0.0.0']);
    const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000', '19001:127.0.0.1:9001']);
    await forwardPath(fwd, 'relay', 1000);
    const plain = await throughput(lab, COORD_ADDRESS, 9100, RELAY_BYTES);
    const trav = await throughput(lab, '127.0.0.1', 19000, RELAY_BYTES);
    rows.push({ what: `relay, plain TCP to the coordination server's host (${(RELAY_BYTES / 2 ** 20).toFixed(0)} MiB)`, value: fmtG(plain), ratio: '' });
    rows.push({ what: 'relay, traverse forward', value: fmtG(trav), ratio: `${(median(trav) / median(plain)).toFixed(2)}x plain` });
    // The forward above may leave the relay for a TCP lane to the agent's vouched address (the
    // agent's NAT maps TCP ports for it): with --disable-direct its stream stays on a relay lane,
    // held to the server's default relay rate.
    const rf = await startForward(lab, pair, ['19100:127.0.0.1:9000'], { args: ['--disable-direct'] });
    await forwardPath(rf, 'relay', 1000);
    const lane = await throughput(lab, '127.0.0.1', 19100, RELAY_BYTES);
    rf.process.kill('SIGTERM');
    rows.push({ what: 'relay, traverse forward --disable-direct (relay lane, default --relay-rate)', value: fmtG(lane), ratio: `${(median(lane) / median(plain)).toFixed(2)}x plain` });
    const lp = await pingpong(lab, COORD_ADDRESS, 9101);
    const lt = await pingpong(lab, '127.0.0.1', 19001);
    rows.push({ what: 'relay, 1-byte round trip, plain TCP to the server host', value: fmtMs(lp), ratio: '' });
    rows.push({ what: 'relay, 1-byte round trip, traverse forward', value: fmtMs(lt), ratio: `${(lt.p50 / lp.p50).toFixed(2)}x plain (p50)` });
  } finally {
    await lab.teardown();
  }
}

async function main(): Promise<void> {
  const a = await labAvailability();
  if (!a.available) {
    console.error(`bench:streams needs the NAT lab: ${a.reason}`);
    process.exit(1);
  }
  const rows: Row[] = [];
  if (PARTS.has('cli')) cliStart(rows);
  if (PARTS.has('direct')) await direct(rows);
  if (PARTS.has('setup')) await setupOnly(rows);
  if (PARTS.has('relay')) await relay(rows);
  const w = Math.max(...rows.map((r) => r.what.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  console.log(`streams in the NAT lab: ${RUNS} runs each, median; Node ${process.version}`);
  for (const r of rows) console.log(`${r.what.padEnd(w)}  ${r.value.padEnd(v)}  ${r.ratio}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
