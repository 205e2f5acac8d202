// The throwaway PostgreSQL of the tests (lab/postgres.ts) never outlives its run: a run killed
// with SIGKILL (no exit handler runs) leaves a postgres behind, and the next run removes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pidAlive } from '../../lab/cleanup.js';
import { postgresUnavailable, sweepStaleClusters, TEST_DATABASE_URL_ENV } from '../../lab/postgres.js';
import { skipOrFail } from '../helpers/required.js';
import { eventually } from './helpers.js';

/** Alive and not a zombie (an init that reaps late must not make a killed postgres look alive). */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const LAB_POSTGRES = fileURLToPath(new URL('../../lab/postgres.js', import.meta.url));

test('a cluster whose run was killed with SIGKILL is stopped and removed by the next run', async (t) => {
  const missing = postgresUnavailable();
  if (missing) return skipOrFail(t, missing);
  if (process.env[TEST_DATABASE_URL_ENV]) return t.skip(`${TEST_DATABASE_URL_ENV} is set: no cluster is started`);
  // A run that starts a cluster, says where, and waits to be killed.
  const script = `
    import { startTestPostgres } from ${JSON.stringify(LAB_POSTGRES)};
    import { readdirSync, readFileSync } from 'node:fs';
    import { tmpdir } from 'node:os';
    await startTestPostgres();
    const dir = readdirSync(tmpdir()).find((n) => n.startsWith('traverse-pg-run' + process.pid + '-'));
    const pid = readFileSync(tmpdir() + '/' + dir + '/data/postmaster.pid', 'utf8').split('\\n')[0];
    console.log(tmpdir() + '/' + dir + ' ' + pid);
    setInterval(() => {}, 1000);
  `;
  const run = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  run.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const line = await eventually(() => (out.includes('\n') ? out.trim() : undefined), 20_000, 'the cluster of the run');
    const [dir, pid] = line.split(' ') as [string, string];
    const exited = new Promise((r) => run.once('exit', r));
    run.kill('SIGKILL');
    await exited;
    assert.ok(running(Number(pid)), 'postgres outlived its killed run');
    sweepStaleClusters();
    await eventually(() => !running(Number(pid)), 5000, 'the stale postgres gone');
    assert.equal(existsSync(dir), false);
  } finally {
    if (run.exitCode === null && run.signalCode === null) run.kill('SIGKILL');
    sweepStaleClusters();
  }
});
