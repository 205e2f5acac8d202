// Network namespace primitives on top of iproute2. Everything runs through `ip` so the lab needs
// nothing but iproute2 and root; programs enter a namespace with `ip netns exec NS prog ...`,
// which execs prog in place (the pid we hold is the program's own pid, so killing it works).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { run, runOk, type ExecOptions, type ExecResult } from './exec.js';
import { checkIfName } from './names.js';

export async function addNamespace(ns: string): Promise<void> {
  await runOk('ip', ['netns', 'add', ns]);
  // Loopback is down in a fresh namespace; servers binding 127.0.0.1 inside it need it up.
  await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** Deletes a namespace; a namespace that is already gone is not an error (teardown is idempotent). */
export async function deleteNamespace(ns: string): Promise<void> {
  const r = await run('ip', ['netns', 'del', ns]);
  if (r.code !== 0 && !/No such file|not exist/i.test(r.stderr)) {
    throw new Error(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
}

export async function listNamespaces(): Promise<string[]> {
  const out = await runOk('ip', ['netns', 'list']);
  // Lines look like "name (id: 3)" or just "name".
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

/** Pids of every process whose network namespace is `ns` (children of our spawns included). */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

export interface VethEnd {
  readonly ns: string;
  readonly name: string;
}

/**
 * Creates a veth pair with each end born directly inside its namespace, so no temporary name
 * ever exists in the root namespace (parallel runs cannot collide there, and the root namespace
 * is never touched).
 */
export async function addVeth(a: VethEnd, b: VethEnd): Promise<void> {
  checkIfName(a.name);
  checkIfName(b.name);
  await runOk('ip', ['link', 'add', 'name', a.name, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
}

/** Runs several `ip` commands in one namespace with one process (`ip -n NS -batch -`). */
export async function ipBatch(ns: string, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await runOk('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

export async function sysctl(ns: string, settings: Readonly<Record<string, string | number>>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await runOk('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...args]);
}

/** Runs a program inside a namespace to completion (see exec.ts for the result and timeout). */
export function nsExec(ns: string, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Starts a long-running program inside a namespace. The caller (the Lab) tracks and kills it. */
export function nsSpawn(ns: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}
