// Shared set-up for stream tests and benchmarks in the lab: STUN, the coordination server, tokens
// and the agent; `traverse forward` in the client's namespace; the TCP ends of stream-tool.js;
// and a switch that cuts UDP between the client's router and the agent's public address.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabProcess } from './lab.js';
import { STUN_HOST } from './topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from './stun-servers.js';
import { createToken, peerEnv, startAgent, startCoordinator, waitForLine, type LabCoordinator } from './peers.js';
import { run, runOk } from './exec.js';
import { BIN } from '../test/helpers/cli.js';

export const TOOL = fileURLToPath(new URL('./stream-tool.js', import.meta.url));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StreamPair {
  readonly coord: LabCoordinator;
  readonly clientToken: string;
  readonly agentToken: string;
  readonly agent: LabProcess;
}

/** STUN on the internet host, the coordination server, tokens for dev-box and laptop, the agent. */
export async function streamPair(lab: Lab, agentArgs: string[] = [], serverArgs: string[] = []): Promise<StreamPair> {
  await startTraverseStun(lab, STUN_HOST);
  const coord = await startCoordinator(lab, ['--stun', `${lab.node(STUN_HOST).address}:${TRAVERSE_STUN_PORT}`, ...serverArgs]);
  const agentToken = await createToken(coord.dataDir, ['--agent', 'dev-box']);
  const clientToken = await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']);
  const agent = await startAgent(lab, 'agent', coord.url, agentToken, agentArgs);
  return { coord, clientToken, agentToken, agent };
}

/** Lines a process printed, with the time each arrived (performance.now()). */
export interface Lines {
  readonly out: { t: number; line: string }[];
  err: string;
  /** The process has exited (no more lines will come). */
  exited: boolean;
}

export function collect(child: LabProcess): Lines {
  const lines: Lines = { out: [], err: '', exited: false };
  child.once('exit', () => setTimeout(() => (lines.exited = true), 100));
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const line of parts) lines.out.push({ t: performance.now(), line });
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (lines.err.length < 200_000) lines.err += d.toString();
  });
  return lines;
}

/** Waits for a collected line matching `re` (after time `after`); returns it. */
export async function lineMatching(lines: Lines, re: RegExp, timeoutMs: number, after = 0, what = 'line'): Promise<{ t: number; line: string }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const l = lines.out.find((x) => x.t >= after && re.test(x.line));
    if (l) return l;
    if (performance.now() > deadline || lines.exited) throw new Error(`no ${what} matching ${re} within ${timeoutMs} ms${lines.exited ? ' (the process exited)' : ''}; stdout:\n${lines.out.map((x) => x.line).join('\n')}\nstderr:\n${lines.err.slice(-4000)}`);
    await sleep(50);
  }
}

export interface Forward {
  readonly process: LabProcess;
  readonly lines: Lines;
}

/** `traverse forward dev-box SPEC...` in the client's namespace; resolves once every port listens. */
export async function startForward(lab: Lab, pair: StreamPair, specs: string[], opts: { host?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<Forward> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-lab-forward-'));
  const child = lab.spawn(opts.host ?? 'client', process.execPath, [BIN, 'forward', 'dev-box', ...specs, '--server', pair.coord.url, '--token', pair.clientToken, ...(opts.args ?? [])], {
    env: { ...peerEnv(state), ...opts.env },
  });
  const lines = collect(child);
  const deadline = performance.now() + 15_000;
  while (lines.out.filter((l) => l.line.startsWith('forwarding ')).length < specs.length) {
    if (child.exitCode !== null) throw new Error(`forward exited (${child.exitCode}):\n${lines.out.map((l) => l.line).join('\n')}\n${lines.err}`);
    if (performance.now() > deadline) throw new Error(`forward not listening after 15 s:\n${lines.out.map((l) => l.line).join('\n')}\n${lines.err}`);
    await sleep(50);
  }
  return { process: child, lines };
}

/** Waits until forward reports the path to dev-box as `kind` (its initial line counts too). */
export function forwardPath(f: Forward, kind: 'direct' | 'relay', timeoutMs: number, after = 0): Promise<{ t: number; line: string }> {
  const re = kind === 'direct' ? /^(path to dev-box: direct|forwarding .*\(path: direct)/ : /^(path to dev-box: relay|forwarding .*\(path: relay)/;
  return lineMatching(f.lines, re, timeoutMs, after, `forward path ${kind}`);
}

/** Starts a stream-tool server and waits until it listens. */
export async function toolServer(lab: Lab, host: string, args: string[]): Promise<{ process: LabProcess; lines: Lines }> {
  const child = lab.spawn(host, process.execPath, [TOOL, ...args]);
  const lines = collect(child);
  await waitForLine(child, /^listening$/, 5000, `stream-tool ${args[0]} in ${host}`);
  return { process: child, lines };
}

/** Runs a stream-tool client to completion and returns its last JSON line. */
export async function toolRun<T>(lab: Lab, host: string, args: string[], timeoutMs = 60_000): Promise<T> {
  const r = await lab.exec(host, process.execPath, [TOOL, ...args], { timeoutMs });
  const last = r.stdout.trim().split('\n').pop();
  if (!last?.startsWith('{')) throw new Error(`stream-tool ${args.join(' ')} in ${host} printed no result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(last) as T;
}

/** Drops UDP between a router's networks and `address` (both directions), in its forward path. */
export function blockUdp(lab: Lab, router: string, address: string): Promise<void> {
  return blockProtocol(lab, router, address, 'udp');
}

/** Drops TCP the same way: what a NAT that lost a lane's mapping does to it. */
export function blockTcp(lab: Lab, router: string, address: string): Promise<void> {
  return blockProtocol(lab, router, address, 'tcp');
}

async function blockProtocol(lab: Lab, router: string, address: string, protocol: 'udp' | 'tcp'): Promise<void> {
  const rules = `table inet trvblock {\n  chain cut {\n    type filter hook forward priority -10; policy accept;\n    ip daddr ${address} ip protocol ${protocol} drop\n    ip saddr ${address} ip protocol ${protocol} drop\n  }\n}\n`;
  await runOk('ip', ['netns', 'exec', lab.router(router).ns, 'nft', '-f', '-'], { input: rules });
}

export async function unblockUdp(lab: Lab, router: string): Promise<void> {
  await runOk('ip', ['netns', 'exec', lab.router(router).ns, 'nft', 'delete', 'table', 'inet', 'trvblock']);
}

/** The promise's value, or 'timeout' after `ms` (the timer does not outlive the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the exit code once the process has exited. */
export function exited(p: LabProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once('exit', (code) => r(code)));
}

/** A throw-away sshd config, host key and client key; root logs in with the key only. */
export async function sshFixture(port: number, listen = '127.0.0.1'): Promise<{ dir: string; config: string; key: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-sshd-'));
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege-separation directory
  for (const [file, type] of [['host_ed25519', 'ed25519'], ['client_ed25519', 'ed25519']] as const) {
    const r = await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', join(dir, file)]);
    if (r.code !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_ed25519.pub')));
  chmodSync(join(dir, 'client_ed25519'), 0o600);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${listen}`,
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  return { dir, config, key: join(dir, 'client_ed25519') };
}

/** Starts sshd -D -e in a node's namespace and waits until it listens. */
export async function startSshd(lab: Lab, host: string, config: string, port: number): Promise<void> {
  const sshd = lab.spawn(host, '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  let err = '';
  sshd.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 5000;
  for (;;) {
    const ss = await lab.exec(host, 'ss', ['-Hntl']);
    if (ss.stdout.includes(`:${port} `)) return;
    if (sshd.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `ssh` in the client's namespace through `proxyCommand` (e.g. traverse proxy), non-interactively, as root@dev-box. */
export function sshThrough(
  lab: Lab,
  proxyCommand: string,
  key: string,
  command: string,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return lab.exec(
    'client',
    'ssh',
    [
      '-o', `ProxyCommand=${proxyCommand}`,
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'LogLevel=ERROR',
      '-i', key,
      'root@dev-box',
      command,
    ],
    { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.env ? { env: opts.env } : {}) },
  );
}
