// `traverse stun-server` as a process: startup line, SIGTERM, bad flags, and interop with coturn's
// turnutils_stunclient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bindingRequest, Client } from '../stun/server-helpers.js';
import { skipOrFail } from '../helpers/required.js';

const BIN = fileURLToPath(new URL('../../../bin/traverse.js', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  readonly ports: number[];
  readonly line: string;
}

/** Starts the CLI and waits for its "listening" line on stdout. */
function start(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'stun-server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 5 s; stderr: ${err}`)), 5000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('stun-server listening'));
      if (line === undefined) return;
      clearTimeout(timer);
      const ports = [...line.matchAll(/127\.0\.0\.\d:(\d+)/g)].map((m) => Number(m[1]));
      resolve({ child, ports, line });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening; stderr: ${err}`));
    });
  });
}

function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; elapsed: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running ${ms} ms after SIGTERM`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, elapsed: Date.now() - t0 });
    });
  });
}

for (const workers of [1, 2]) {
  test(`--workers ${workers}: answers, then SIGTERM closes and exits 0 within a second`, async () => {
    const s = await start(['--listen', '127.0.0.1:0', '--workers', String(workers), '--rate-limit', '0']);
    const client = await Client.open();
    try {
      const r = await client.ask(bindingRequest(), s.ports[0]!, '127.0.0.1', 2000);
      assert.equal(r.msg.cls, 'success');
    } finally {
      client.close();
    }
    s.child.kill('SIGTERM');
    const { code, elapsed } = await exitWithin(s.child, 1000);
    assert.equal(code, 0);
    assert.ok(elapsed < 1000, `${elapsed} ms`);
  });
}

test('bad flags exit 2 with a message saying what to change', () => {
  const r = spawnSync(process.execPath, [BIN, 'stun-server', '--listen', '0.0.0.0:0', '--alt-address', '127.0.0.2'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /RFC 5780 mode needs the primary address itself/);
  const bad = spawnSync(process.execPath, [BIN, 'stun-server', '--rate-limit', 'lots'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--rate-limit "lots" must be a whole number/);
});

test('--help explains every flag', () => {
  const r = spawnSync(process.execPath, [BIN, 'stun-server', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const flag of ['--listen', '--alt-address', '--alt-port', '--tcp', '--metrics', '--rate-limit', '--workers']) assert.ok(r.stdout.includes(flag), flag);
});

function stunclient(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v turnutils_stunclient'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : null;
}

test('interop: coturn turnutils_stunclient gets its mapped address from us', async (t) => {
  const bin = stunclient();
  if (bin === null) return skipOrFail(t, 'turnutils_stunclient not installed (Debian package coturn)');
  const s = await start(['--listen', '127.0.0.1:0']);
  try {
    const r = spawnSync(bin, ['-p', String(s.ports[0]), '127.0.0.1'], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /UDP reflexive addr: 127\.0\.0\.1:\d+/);
  } finally {
    s.child.kill('SIGTERM');
    await exitWithin(s.child, 1000);
  }
});

test('interop: turnutils_stunclient in RFC 5780 mode reads our OTHER-ADDRESS and RESPONSE-ORIGIN', async (t) => {
  const bin = stunclient();
  if (bin === null) return skipOrFail(t, 'turnutils_stunclient not installed (Debian package coturn)');
  const s = await start(['--listen', '127.0.0.1:0', '--alt-address', '127.0.0.2']);
  try {
    // Its second test asks for the answer on another port with RESPONSE-PORT, which we refuse
    // with 420 by design (a spoofed request could aim it at a victim); it then waits for ever on
    // that port, so it is stopped after its first exchange has been printed.
    const r = spawnSync(bin, ['-f', '-p', String(s.ports[0]), '127.0.0.1'], { encoding: 'utf8', timeout: 1500 });
    assert.match(r.stdout, /UDP reflexive addr: 127\.0\.0\.1:\d+/);
    assert.match(r.stdout, new RegExp(`Response origin: : 127\\.0\\.0\\.1:${s.ports[0]}`));
    assert.match(r.stdout, new RegExp(`Other addr: : 127\\.0\\.0\\.2:${s.ports[1]}`));
  } finally {
    s.child.kill('SIGTERM');
    await exitWithin(s.child, 1000);
  }
});
