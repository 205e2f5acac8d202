// Debian's haproxy in front of several `traverse server` replicas, as a load balancer in
// production would be: HTTP mode (the WebSocket upgrade passes through as a tunnel), health
// checks on /healthz so a dead backend is taken out within a second, and redispatch so that a
// connection refused by a dead backend is retried on another one. Started in the foreground by
// the test and killed with it (lab/cleanup.ts), its config in a temporary folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackLab, untrackLab, type Disposable } from './cleanup.js';

export const HAPROXY = '/usr/sbin/haproxy';

export function haproxyUnavailable(): string | undefined {
  if (!existsSync(HAPROXY)) return 'haproxy not installed (no /usr/sbin/haproxy; apt-get install haproxy)';
  if (spawnSync(HAPROXY, ['-v'], { stdio: 'ignore' }).status !== 0) return `${HAPROXY} -v failed`;
  return undefined;
}

export interface Haproxy {
  readonly url: string;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  /** host:port of the frontend, loopback. */
  readonly listen: { readonly host: string; readonly port: number };
  /** host:port of each backend replica. */
  readonly backends: readonly string[];
}

/** The config: every directive a WebSocket service behind haproxy needs, and nothing else. */
export function haproxyConfig(o: HaproxyOptions): string {
  return [
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    '  timeout server 60s',
    // An upgraded WebSocket is a tunnel: its idle time is bounded by this, not by client/server.
    '  timeout tunnel 1h',
    // A backend that refuses is retried, on another backend (redispatch), before the client hears.
    '  retries 3',
    '  option redispatch',
    'frontend coordination',
    `  bind ${o.listen.host}:${o.listen.port}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    ...o.backends.map((b, i) => `  server replica${i + 1} ${b} check inter 300 fall 2 rise 1`),
    '',
  ].join('\n');
}

export async function startHaproxy(o: HaproxyOptions): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(o));
  const check = spawnSync(HAPROXY, ['-c', '-q', '-f', cfg], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`haproxy rejected its config: ${check.stderr || check.stdout}`);
  }
  // -db: stay in the foreground, so the process is ours to stop and its exit is seen.
  const child: ChildProcess = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (log.length < 20_000) log += d.toString();
  });
  const removeSync = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const tracked: Disposable = { teardown: async () => removeSync(), teardownSync: removeSync };
  trackLab(tracked);
  try {
    await waitForPort(o.listen.host, o.listen.port, child, () => log);
  } catch (err) {
    untrackLab(tracked);
    removeSync();
    throw err;
  }
  return {
    url: `http://${o.listen.host}:${o.listen.port}`,
    async stop() {
      untrackLab(tracked);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(host: string, port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`haproxy exited:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy not listening on ${host}:${port} after 10 s:\n${log()}`);
}
