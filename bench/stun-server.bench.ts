// Binding responses per second: coturn against `traverse stun-server`, alternating in one run.
//
// The load comes from stunload (../shared/tools/stunload.c, built here with gcc): 4 sockets with
// 64 requests in flight each, closed loop, bare 20-byte Binding requests on loopback. Both servers
// get the same machine: coturn with as many relay threads as cores, ours with 1 and N workers.
// Run: npm run bench:stun-server   (env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_WORKERS)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import dgram from 'node:dgram';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE = join(ROOT, '..', 'shared', 'tools', 'stunload.c');
const BUILD = join(ROOT, 'bench', '.build');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CORES = availableParallelism();
const WORKERS = Number(process.env.BENCH_WORKERS ?? Math.max(2, CORES));
const COTURN_PORT = 35478;
const OURS_1_PORT = 35480;
const OURS_N_PORT = 35482;

function fail(message: string): never {
  process.stderr.write(`stun-server bench: ${message}\n`);
  process.exit(1);
}

function buildLoad(): string {
  if (!existsSync(SOURCE)) fail(`${SOURCE} not found: the load generator lives in ../shared/tools next to the repository`);
  mkdirSync(BUILD, { recursive: true });
  const out = join(BUILD, 'stunload');
  const r = spawnSync('gcc', ['-O2', '-o', out, SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) fail(`gcc failed (install build-essential): ${r.stderr || r.error?.message}`);
  return out;
}

function startCoturn(): ChildProcess {
  if (spawnSync('sh', ['-c', 'command -v turnserver']).status !== 0) fail('turnserver not found (apt-get install coturn)');
  // Fastest fair setup: STUN only, UDP only, no auth, no logging, one relay thread per core.
  return spawn(
    'turnserver',
    ['-n', '--stun-only', '--no-cli', '--no-auth', '-L', '127.0.0.1', '-p', String(COTURN_PORT), '--no-tls', '--no-dtls', '--no-tcp',
      '--log-file', '/dev/null', '--no-stdout-log', '-m', String(CORES)],
    { stdio: 'ignore' },
  );
}

function startOurs(port: number, workers: number): ChildProcess {
  return spawn(
    process.execPath,
    [join(ROOT, 'bin', 'traverse.js'), 'stun-server', '--listen', `127.0.0.1:${port}`, '--rate-limit', '0', '--workers', String(workers)],
    { stdio: 'ignore', env: { ...process.env, TRAVERSE_LOG_LEVEL: 'warn' } },
  );
}

/** Size of the answer to a bare Binding request; also proves the server is up. */
async function responseSize(port: number): Promise<number> {
  const s = dgram.createSocket('udp4');
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      const req = Buffer.alloc(20);
      req.writeUInt16BE(1, 0);
      req.writeUInt32BE(0x2112a442, 4);
      req.writeUInt32BE(attempt, 8);
      const got = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 100);
        s.once('message', (m) => {
          clearTimeout(timer);
          resolve(m.length);
        });
        s.send(req, port, '127.0.0.1');
      });
      if (got !== null) return got;
    }
  } finally {
    s.close();
  }
  return fail(`no answer on 127.0.0.1:${port} after 5 s`);
}

function load(bin: string, port: number): number {
  const r = spawnSync(bin, ['127.0.0.1', String(port), String(SECONDS), '4', '64'], { encoding: 'utf8' });
  const m = /rate=(\d+)/.exec(r.stdout);
  if (m === null) fail(`stunload printed no rate: ${r.stdout} ${r.stderr}`);
  return Number(m[1]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const k = (n: number): string => `${(n / 1000).toFixed(0)}k/s`;

async function main(): Promise<void> {
  const bin = buildLoad();
  const procs = [startCoturn(), startOurs(OURS_1_PORT, 1), startOurs(OURS_N_PORT, WORKERS)];
  const stop = (): void => procs.forEach((p) => p.kill('SIGTERM'));
  process.on('exit', stop);
  const sizes = { coturn: await responseSize(COTURN_PORT), ours: await responseSize(OURS_1_PORT) };
  await responseSize(OURS_N_PORT);
  console.log(`machine: ${CORES} cores; load: stunload 4 sockets x 64 in flight, ${SECONDS} s per run, ${ROUNDS} rounds`);
  console.log(`response to a bare 20-byte Binding request: coturn ${sizes.coturn} bytes, traverse ${sizes.ours} bytes`);
  const results = { coturn: [] as number[], ours1: [] as number[], oursN: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    const c = load(bin, COTURN_PORT);
    const o1 = load(bin, OURS_1_PORT);
    const oN = load(bin, OURS_N_PORT);
    results.coturn.push(c);
    results.ours1.push(o1);
    results.oursN.push(oN);
    console.log(`round ${round}: coturn -m ${CORES} ${k(c)}   traverse 1 worker ${k(o1)} (${(o1 / c).toFixed(2)}x)   traverse ${WORKERS} workers ${k(oN)} (${(oN / c).toFixed(2)}x)`);
  }
  const c = median(results.coturn);
  const o1 = median(results.ours1);
  const oN = median(results.oursN);
  console.log(`median: coturn ${k(c)}; traverse 1 worker ${k(o1)} = ${(o1 / c).toFixed(2)}x; traverse ${WORKERS} workers ${k(oN)} = ${(oN / c).toFixed(2)}x coturn`);
  stop();
}

await main();
