// Long-running `traverse` processes for tests (server, agent, forward): started from the built
// bin/traverse.js, their output collected, and stopped (SIGTERM, then SIGKILL) by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';

export interface Running {
  readonly proc: ChildProcess;
  /** Everything printed so far on stdout and stderr. */
  out(): string;
  /** Resolves with the first match of `re` in the output (rejects after timeoutMs or an exit). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<number | null>;
}

export function startTraverse(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    text += d.toString();
    for (const l of [...listeners]) l();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.on('exit', () => {
    for (const l of [...listeners]) l();
  });
  return {
    proc,
    out: () => text,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(text);
          if (m) return done(() => resolve(m));
          if (proc.exitCode !== null || proc.signalCode !== null) done(() => reject(new Error(`traverse ${args[0]} exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${text}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${re} from traverse ${args[0]} within ${timeoutMs} ms:\n${text}`))), timeoutMs);
        const done = (f: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** `traverse server` on 127.0.0.1 with these extra flags; resolves once it prints its URL. */
export async function startServerProcess(dir: string, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<{ server: Running; url: string }> {
  const server = startTraverse(['server', '--data', dir, '--stun-listen', 'disable', ...(extra.some((a) => a === '--listen') ? [] : ['--listen', '127.0.0.1:0']), ...extra], {
    TRAVERSE_LOG_LEVEL: 'info',
    ...env,
  });
  try {
    const m = await server.waitFor(/listening on (https?:\/\/\S+)/, 30_000);
    await server.waitFor(/token (create|list)/, 5000);
    return { server, url: m[1]! };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
