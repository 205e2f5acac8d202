// Several `traverse server` replicas in a lab: a throwaway PostgreSQL inside the coordination
// host's namespace (on its loopback, where only the replicas reach it), and N replicas on that
// host's internet address, ports 8080, 8081, ... Tokens are made with the real `traverse token
// create --database`. Everything is killed with the lab; the cluster's folder is removed by stop().
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';
import { postgresBinDir, postgresUnavailable } from './postgres.js';
import { COORD_HOST } from './topologies.js';
import { COORD_PORT, waitForLine } from './peers.js';
import { BIN } from '../test/helpers/cli.js';

export interface LabReplica {
  readonly url: string;
  readonly process: LabProcess;
  /** Everything the replica printed on stderr (its log), for diagnostics. */
  readonly log: () => string;
}

export interface LabReplicas {
  readonly databaseUrl: string;
  readonly replicas: LabReplica[];
  token(args: string[]): Promise<string>;
  stop(): void;
}

/** Why replicas cannot run in the lab here, or undefined. */
export function labReplicasUnavailable(): string | undefined {
  return postgresUnavailable() ?? (postgresUser() ? undefined : 'no postgres user to run PostgreSQL as');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const row = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === 'postgres');
  return row ? { uid: Number(row[2]), gid: Number(row[3]) } : undefined;
}

export async function startLabReplicas(lab: Lab, n: number, serverArgs: string[] = []): Promise<LabReplicas> {
  const bin = postgresBinDir()!;
  const user = postgresUser()!;
  const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-pg-'));
  chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const asPostgres = ['--reuid=postgres', '--regid=postgres', '--clear-groups'];
  const init = spawnSync('setpriv', [...asPostgres, join(bin, 'initdb'), '-D', data, '-U', 'traverse', '-A', 'trust', '--no-sync', '--no-instructions'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' } });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const pgProcess = lab.spawn(COORD_HOST, 'setpriv', [
    ...asPostgres, join(bin, 'postgres'), '-D', data, '-h', '127.0.0.1', '-p', '5432', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off',
  ]);
  let pgLog = '';
  pgProcess.stderr?.on('data', (d: Buffer) => (pgLog = (pgLog + d.toString()).slice(-4000)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await lab.exec(COORD_HOST, join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', '5432', '-t', '1']);
    if (r.code === 0) break;
    if (Date.now() > deadline || pgProcess.exitCode !== null) throw new Error(`postgres did not start in the lab:\n${pgLog}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  const databaseUrl = 'postgres://traverse@127.0.0.1:5432/postgres';
  const address = lab.node(COORD_HOST).address;
  const replicas: LabReplica[] = [];
  for (let i = 0; i < n; i++) {
    const port = COORD_PORT + i;
    const child = lab.spawn(COORD_HOST, process.execPath, [
      BIN, 'server', '--listen', `${address}:${port}`, '--database', databaseUrl, '--stun-listen', 'disable', '--ping-interval', '2', ...serverArgs,
    ]);
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    await waitForLine(child, /traverse server listening/, 15_000, `replica ${i}`);
    replicas.push({ url: `http://${address}:${port}`, process: child, log: () => log });
  }
  return {
    databaseUrl,
    replicas,
    async token(args) {
      const r = await lab.exec(COORD_HOST, process.execPath, [BIN, 'token', 'create', '--database', databaseUrl, ...args], { timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`token create ${args.join(' ')} failed: ${r.stderr}`);
      return r.stdout.trim().split('\n').pop()!;
    },
    stop() {
      if (pgProcess.exitCode === null) pgProcess.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
