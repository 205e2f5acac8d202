// What carrying IPv4 on the node's dual-stack socket costs: one UDX stream over loopback between
// two udx-native sockets, bound the way a node binds them ([::] with IPV6_V6ONLY off) and the way
// it did before (0.0.0.0), and over ::1. Runs alternate so that each series sees the same moments
// of a noisy machine; the ratio is against the IPv4-only sockets measured in the same run.
//
//   npm run bench:dual-stack      (BENCH_RUNS, default 9; BENCH_MB per run, default 64)
import UDX from 'udx-native';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const BYTES = Number(process.env.BENCH_MB ?? 64) * 1024 * 1024;

interface Case {
  readonly name: string;
  readonly bind: string;
  readonly host: string;
}

const CASES: readonly Case[] = [
  { name: 'IPv4-only sockets (0.0.0.0), to 127.0.0.1', bind: '0.0.0.0', host: '127.0.0.1' },
  { name: 'dual-stack sockets ([::]), to 127.0.0.1', bind: '::', host: '127.0.0.1' },
  { name: 'dual-stack sockets ([::]), to ::1', bind: '::', host: '::1' },
];

/** Mbit/s of one stream carrying BYTES from one socket to the other. */
async function once(c: Case): Promise<number> {
  const udx = new UDX();
  const a = udx.createSocket({ ipv6Only: false });
  const b = udx.createSocket({ ipv6Only: false });
  a.bind(0, c.bind);
  b.bind(0, c.bind);
  const tx = udx.createStream(1);
  const rx = udx.createStream(2);
  tx.connect(a, 2, b.address().port, c.host);
  rx.connect(b, 1, a.address().port, c.host);
  const started = performance.now();
  let got = 0;
  const done = new Promise<void>((resolve) => {
    rx.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= BYTES) resolve();
    });
  });
  const chunk = Buffer.alloc(64 * 1024);
  for (let sent = 0; sent < BYTES; sent += chunk.length) {
    if (!tx.write(chunk)) await new Promise((r) => tx.once('drain', r));
  }
  await done;
  const seconds = (performance.now() - started) / 1000;
  tx.destroy();
  rx.destroy();
  await Promise.all([a.close(), b.close()]);
  return (BYTES * 8) / seconds / 1e6;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const results = CASES.map(() => [] as number[]);
  for (let r = 0; r < RUNS; r++) {
    for (const [i, c] of CASES.entries()) results[i]!.push(await once(c));
  }
  const base = median(results[0]!);
  console.log(`one UDX stream over loopback, ${BYTES / 1024 / 1024} MB per run, ${RUNS} alternating runs per case`);
  for (const [i, c] of CASES.entries()) {
    const m = median(results[i]!);
    console.log(`${c.name.padEnd(44)} median ${m.toFixed(0).padStart(5)} Mbit/s  ${(m / base).toFixed(2)}x IPv4-only  (runs ${results[i]!.map((x) => x.toFixed(0)).join(' ')})`);
  }
}

await main();
