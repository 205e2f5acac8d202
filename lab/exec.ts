// Running commands for the lab: argument vectors only (never a shell string), a hard timeout,
// and a result that keeps stdout, stderr and the exit code apart so tests can assert on each.
import { spawn } from 'node:child_process';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code, or null when the process died from a signal (including our timeout). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
}

export interface ExecOptions {
  /** Kill the process (SIGKILL) after this long. Default 10 s: a hung `ip` must not hang a test. */
  readonly timeoutMs?: number;
  /** Written to stdin, which is then closed (used for `nft -f -` and `ip -batch -`). */
  readonly input?: string;
  /** The program's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

export class LabCommandError extends Error {
  override readonly name = 'LabCommandError';
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    const why = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
    super(`lab command \`${argv.join(' ')}\` ${why}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

/** Runs a program to completion. Never rejects for a non-zero exit: see `runOk` for that. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 10_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // EPIPE when the program exits before reading stdin is not our error: the exit code tells.
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
        signal,
        timedOut,
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a program and throws LabCommandError unless it exits 0; returns stdout. */
export async function runOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) throw new LabCommandError([cmd, ...args], result);
  return result.stdout;
}
