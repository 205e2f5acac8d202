#!/usr/bin/env node
// Runs the compiled test files with node:test. Node 20's `--test` takes no globs, so the
// files are listed here. `--unit` skips the lab (network namespace) tests.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const unitOnly = process.argv.includes('--unit');
const root = 'dist/test';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk(root);
if (unitOnly) files = files.filter((f) => !f.includes(`${join(root, 'lab')}`));
const only = process.env.TRAVERSE_TEST_FILTER;
if (only) files = files.filter((f) => f.includes(only));

// Lab tests build namespaces and start servers; two at a time fit on two cores. The runner's
// output passes through as it comes; its closing counts are kept for the last line.
const counts = {};
const status = await new Promise((resolve) => {
  // Port mapping would ask this machine's real router: tests never may. Lab tests turn it back on
  // for the nodes they run inside their namespaces (lab/peers.ts), behind the lab's routers.
  const env = { ...process.env, TRAVERSE_PORT_MAPPING: '0' };
  const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let tail = '';
  child.stdout.on('data', (d) => {
    process.stdout.write(d);
    tail = (tail + d.toString()).slice(-4096);
    for (const m of tail.matchAll(/^ℹ (pass|fail|skipped|todo|cancelled) (\d+)$/gm)) counts[m[1]] = Number(m[2]);
  });
  child.on('close', (code) => resolve(code ?? 1));
});

// One closing line about the lab: did its suites run, and if not, what is missing and how to get it.
const labFiles = files.filter((f) => f.includes(`${join(root, 'lab')}`)).length;
if (labFiles > 0) {
  const tools = { ip: 'iproute2', nft: 'nftables', iptables: 'iptables', conntrack: 'conntrack', turnserver: 'coturn', sshd: 'openssh-server', ssh: 'openssh-client', tcpdump: 'tcpdump', curl: 'curl', gcc: 'gcc', miniupnpd: 'miniupnpd-nftables' };
  const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;
  const missing = Object.entries(tools).filter(([cmd]) => !have(cmd)).map(([cmd, pkg]) => `${cmd} (${pkg})`);
  const isRoot = process.getuid?.() === 0;
  if (missing.length === 0 && isRoot) console.log(`lab: ${labFiles} lab suites ran (root, every lab tool present)`);
  else {
    const why = [...(isRoot ? [] : ['not root']), ...(missing.length > 0 ? [`missing ${missing.join(', ')}`] : [])].join('; ');
    console.log(`lab: ${labFiles} lab suites skipped or failed (${why}); install the tools with: sudo bash scripts/install-test-tools.sh, and run the tests as root`);
  }
}
// The plain closing line: the whole run's counts, as the runner reported them.
console.log(`tests: ${counts.pass ?? 0} passed, ${(counts.fail ?? 0) + (counts.cancelled ?? 0)} failed, ${counts.skipped ?? 0} skipped`);
process.exit(status);
