// A real PostgreSQL for tests and benchmarks, started and removed by the run that needs it.
//
// With TRAVERSE_TEST_DATABASE_URL (an administrator's URL to a server someone else runs, as a CI
// service container offers) each caller gets fresh databases in that server, dropped at the end.
// Without it, Debian's PostgreSQL binaries make a throwaway cluster: `initdb` into a temporary
// folder, `postgres` on a free loopback port with durability off (fsync, synchronous commit: a
// test database need not survive a power cut, and start-up stays around a second), run as the
// `postgres` user when we are root (PostgreSQL refuses to run as root). The cluster is stopped
// and its folder removed when the caller stops it, and at process exit or on a signal whatever
// happened (lab/cleanup.ts), so a failing test leaves nothing running.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pidAlive, trackLab, untrackLab, type Disposable } from './cleanup.js';

export const TEST_DATABASE_URL_ENV = 'TRAVERSE_TEST_DATABASE_URL';

/** Where Debian keeps a PostgreSQL version's programs: the newest one with initdb and postgres. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

/** Why no PostgreSQL can be had for a test, or undefined when one can. */
export function postgresUnavailable(): string | undefined {
  if (process.env[TEST_DATABASE_URL_ENV]) return undefined;
  if (!postgresBinDir()) return `PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql, or set ${TEST_DATABASE_URL_ENV})`;
  if (process.getuid?.() === 0 && !unprivilegedUser()) return 'running as root and there is no postgres or nobody user to run PostgreSQL as';
  return undefined;
}

export interface TestPostgres {
  /** A new, empty database; its URL (no password: the test cluster trusts loopback). */
  createDatabase(): Promise<string>;
  /** The cluster's process id, when this run started it (for kill -9 tests), else undefined. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

let counter = 0;
const databaseName = (): string => `traverse_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;

export interface TestPostgresOptions {
  /**
   * The address a new cluster listens on (default 127.0.0.1): a lab test whose servers run in
   * network namespaces gives an address they can reach.
   */
  readonly host?: string;
}

/** A PostgreSQL to make databases in: the one TRAVERSE_TEST_DATABASE_URL names, or a new cluster. */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const given = process.env[TEST_DATABASE_URL_ENV];
  if (given) return externalPostgres(given);
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  return startCluster(postgresBinDir()!, options.host ?? '127.0.0.1');
}

async function externalPostgres(adminUrl: string): Promise<TestPostgres> {
  const made: string[] = [];
  return {
    pid: undefined,
    async createDatabase() {
      const name = databaseName();
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      made.push(name);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async stop() {
      for (const name of made.splice(0)) await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function unprivilegedUser(): { uid: number; gid: number } | undefined {
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of ['postgres', 'nobody']) {
    const row = passwd.find((f) => f[0] === name);
    if (row && row[2] && row[3]) return { uid: Number(row[2]), gid: Number(row[3]) };
  }
  return undefined;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Temporary folders of clusters are named after the pid of the run that made them. */
const CLUSTER_PREFIX = 'traverse-pg-run';

/**
 * Stops and removes clusters whose run died without cleaning up (SIGKILL, a power cut): a
 * postgres outlives its parent, so without this it would hold its port and memory forever.
 * Clusters of live runs (parallel test files) are left alone.
 */
export function sweepStaleClusters(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = new RegExp(`^${CLUSTER_PREFIX}(\\d+)-`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const dir = join(tmpdir(), name);
    try {
      const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      // Only that cluster's postgres: a pid reused since by another program is not touched.
      const cmdline = readFileSync(`/proc/${postmaster}/cmdline`, 'utf8');
      if (postmaster > 0 && cmdline.includes('postgres') && cmdline.includes(dir)) process.kill(postmaster, 'SIGKILL');
    } catch {
      // No postmaster.pid (it never started, or stopped), or the process is gone already.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startCluster(bin: string, host: string): Promise<TestPostgres> {
  sweepStaleClusters();
  const dir = mkdtempSync(join(tmpdir(), `${CLUSTER_PREFIX}${process.pid}-`));
  const data = join(dir, 'data');
  const as = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
  if (as) chownSync(dir, as.uid, as.gid);
  const ids = as ? { uid: as.uid, gid: as.gid } : {};
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };

  let child: ChildProcess | undefined;
  const removeSync = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const tracked: Disposable = { teardown: async () => removeSync(), teardownSync: removeSync };
  trackLab(tracked);

  try {
    const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'traverse', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C', '--no-instructions'], {
      ...ids,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr || init.stdout || String(init.error)}`);
    // initdb trusts loopback only; a cluster on a lab address trusts the lab's hosts too (it
    // listens on that one test address, in namespaces this run made).
    if (host !== '127.0.0.1') appendFileSync(join(data, 'pg_hba.conf'), 'host all all all trust\n');

    // A port picked free may be taken by the time postgres binds it: try a few.
    let lastLog = '';
    for (let attempt = 0; attempt < 4; attempt++) {
      const port = await freeLoopbackPort();
      const started = await startPostgres(bin, data, host, port, ids, env);
      if ('child' in started) {
        child = started.child;
        return cluster(host, port, started.child, async () => {
          untrackLab(tracked);
          await stopChild(started.child);
          rmSync(dir, { recursive: true, force: true });
        });
      }
      lastLog = started.log;
      if (!/could not bind|already in use/i.test(lastLog)) break;
    }
    throw new Error(`postgres did not start:\n${lastLog}`);
  } catch (err) {
    untrackLab(tracked);
    removeSync();
    throw err;
  }
}

async function startPostgres(
  bin: string,
  data: string,
  host: string,
  port: number,
  ids: { uid?: number; gid?: number },
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess } | { log: string }> {
  const args = [
    '-D', data,
    '-h', host,
    '-p', String(port),
    '-c', 'unix_socket_directories=',
    '-c', 'fsync=off',
    '-c', 'synchronous_commit=off',
    '-c', 'full_page_writes=off',
    '-c', 'shared_buffers=32MB',
    '-c', 'max_connections=300',
  ];
  const child = spawn(join(bin, 'postgres'), args, { ...ids, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (log.length < 20_000) log += d.toString();
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return { log };
    const c = new pg.Client({ host, port, user: 'traverse', database: 'postgres', connectionTimeoutMillis: 1000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.end();
      return { child };
    } catch {
      await c.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGKILL');
  return { log: `not accepting connections after 30 s\n${log}` };
}

function cluster(host: string, port: number, child: ChildProcess, stop: () => Promise<void>): TestPostgres {
  const at = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const admin = `postgres://traverse@${at}/postgres`;
  return {
    pid: child.pid,
    async createDatabase() {
      const name = databaseName();
      await adminQuery(admin, `CREATE DATABASE ${name}`);
      return `postgres://traverse@${at}/${name}`;
    },
    stop,
  };
}

/** Fast shutdown (SIGINT: sessions are ended, nothing is waited for), SIGKILL if it lingers. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
