// `traverse server` as a real process (node bin/traverse.js, built dist/), for tests that kill
// it (kill -9) or run several of it: started on a free loopback port, its URL read from its
// banner, and killed at process exit whatever happens (lab/cleanup.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { trackLab, untrackLab, type Disposable } from '../../lab/cleanup.js';
import { BIN, runCli } from './cli.js';

export interface ServerProcess {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly child: ChildProcess;
  /** What it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGKILL: no goodbye to its peers, no last write to the database. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

export async function startServerProcess(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', '--stun-listen', 'disable', ...args], {
    env: { ...process.env, TRAVERSE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    if (out.length < 50_000) out += d.toString();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const killSync = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const tracked: Disposable = { teardown: async () => killSync(), teardownSync: killSync };
  trackLab(tracked);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    untrackLab(tracked);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`traverse server did not start within 15 s:\n${out}`)), 15_000);
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`traverse server exited (${code}) before listening:\n${out}`));
    });
  }).catch(async (err: unknown) => {
    await end('SIGKILL');
    throw err;
  });
  return { url, child, output: () => out, kill9: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

/** `traverse token create ARGS` (with --data or --database in ARGS); returns the token. */
export async function cliToken(args: readonly string[]): Promise<string> {
  const r = await runCli(['token', 'create', ...args]);
  if (r.code !== 0) throw new Error(`token create ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}
