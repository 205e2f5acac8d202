// Runs the built `traverse` command as a user would, and collects what it printed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testEnv } from './test-env.js';

export const BIN = fileURLToPath(new URL('../../../bin/traverse.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: testEnv(options.env),
    });
    // Without input the command reads an empty standard input, as from /dev/null.
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`traverse ${args.join(' ')} did not finish in ${options.timeoutMs ?? 20000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 20000);
    // 'close', not 'exit': only then has all of stdout been read.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
