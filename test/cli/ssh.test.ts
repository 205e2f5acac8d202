// `traverse ssh` as a process, with a stand-in `ssh` on PATH that records what it was given:
// the ProxyCommand, the host, the arguments passed on, the environment, and the exit status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli } from '../helpers/cli.js';
import { testEnv } from '../helpers/test-env.js';

const TOKEN = 'trv1_' + 'Q'.repeat(43);
const SERVER = 'http://127.0.0.1:9';

function fakeSsh(): { dir: string; env: NodeJS.ProcessEnv; argv: () => string[]; traverseEnv: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-ssh-'));
  writeFileSync(
    join(dir, 'ssh'),
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > "${dir}/argv"\nenv | grep -E '^TRAVERSE_(SERVER|TOKEN|TOKEN_FILE)=' | sort > "${dir}/env"\n` +
      `if [ -n "$FAKE_SSH_SLEEP" ]; then echo sleeping; exec sleep "$FAKE_SSH_SLEEP"; fi\nexit "\${FAKE_SSH_EXIT:-0}"\n`,
  );
  chmodSync(join(dir, 'ssh'), 0o755);
  return {
    dir,
    env: { PATH: `${dir}:${process.env.PATH}`, TRAVERSE_SERVER: SERVER, TRAVERSE_TOKEN: TOKEN, TRAVERSE_TOKEN_FILE: undefined },
    argv: () => readFileSync(join(dir, 'argv'), 'utf8').trimEnd().split('\n'),
    traverseEnv: () => readFileSync(join(dir, 'env'), 'utf8').trimEnd().split('\n'),
  };
}

test('traverse ssh runs ssh with traverse proxy as ProxyCommand, host traverse.AGENT, the rest passed on; the token only in the environment', async () => {
  const ssh = fakeSsh();
  try {
    const r = await runCli(['ssh', 'root@dev-box', '--target', '127.0.0.1:2222', '--disable-direct', '-i', '/k', '--', 'uname', '-a'], { env: { ...ssh.env, FAKE_SSH_EXIT: '7' } });
    assert.equal(r.code, 7, r.stderr);
    const argv = ssh.argv();
    assert.equal(argv[0], '-o');
    assert.match(argv[1]!, /^ProxyCommand=\S.* proxy dev-box 127\.0\.0\.1:2222 --disable-direct$/);
    // The same traverse, by absolute paths.
    assert.ok(argv[1]!.slice('ProxyCommand='.length).split(' proxy ')[0]!.split(' ').every((w) => w.startsWith('/')), argv[1]);
    assert.deepEqual(argv.slice(2), ['-o', 'HostKeyAlias=traverse.dev-box', 'root@traverse.dev-box', '-i', '/k', '--', 'uname', '-a']);
    assert.ok(!argv.join(' ').includes(TOKEN), 'no token on the command line');
    assert.ok(!argv.join(' ').includes(SERVER), 'no server on the command line');
    assert.deepEqual(ssh.traverseEnv(), [`TRAVERSE_SERVER=${SERVER}`, `TRAVERSE_TOKEN=${TOKEN}`]);
  } finally {
    rmSync(ssh.dir, { recursive: true, force: true });
  }
});

test('traverse ssh AGENT: default user and target; --server and --token-file become the environment', async () => {
  const ssh = fakeSsh();
  try {
    const tokenFile = join(ssh.dir, 'token');
    writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
    const env = { ...ssh.env, TRAVERSE_SERVER: undefined, TRAVERSE_TOKEN: undefined };
    const r = await runCli(['ssh', 'dev-box', '--server', 'http://coord.example:8080', '--token-file', tokenFile, '--stun', '192.0.2.1:3478'], { env });
    assert.equal(r.code, 0, r.stderr);
    const argv = ssh.argv();
    assert.match(argv[1]!, / proxy dev-box 127\.0\.0\.1:22 --stun 192\.0\.2\.1:3478$/);
    assert.deepEqual(argv.slice(2), ['-o', 'HostKeyAlias=traverse.dev-box', 'traverse.dev-box']);
    assert.deepEqual(ssh.traverseEnv(), ['TRAVERSE_SERVER=http://coord.example:8080', `TRAVERSE_TOKEN=${TOKEN}`]);
  } finally {
    rmSync(ssh.dir, { recursive: true, force: true });
  }
});

test('traverse ssh: no ssh installed exits 1, bad arguments exit 2, each with one line', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'traverse-ssh-none-'));
  try {
    const none = await runCli(['ssh', 'dev-box', '--', 'true'], { env: { PATH: empty, TRAVERSE_SERVER: SERVER, TRAVERSE_TOKEN: TOKEN } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^traverse: ssh is not installed \(no `ssh` on PATH\)/);
    assert.equal(none.stderr.trim().split('\n').length, 1);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['ssh', 'dev-box'], { TRAVERSE_SERVER: undefined, TRAVERSE_TOKEN: TOKEN }, /^traverse: no server/],
    [['ssh', 'dev-box'], { TRAVERSE_SERVER: SERVER, TRAVERSE_TOKEN: undefined, TRAVERSE_TOKEN_FILE: undefined }, /^traverse: no token/],
    [['ssh', 'dev box'], {}, /^traverse: AGENT "dev box" is not an agent name/],
    [['ssh', '-v', 'dev-box'], {}, /^traverse: AGENT "-v" looks like an option/],
    [['ssh', 'dev-box', '--target', 'nope'], {}, /^traverse: /],
    [['ssh'], {}, /missing required argument 'agent'/],
  ];
  for (const [args, env, re] of cases) {
    const r = await runCli(args, { env: { TRAVERSE_SERVER: SERVER, TRAVERSE_TOKEN: TOKEN, ...env } });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('traverse ssh: interrupted (SIGINT), it passes the signal to ssh and exits 130', async () => {
  const ssh = fakeSsh();
  try {
    const child = spawn(process.execPath, [BIN, 'ssh', 'dev-box'], { env: testEnv({ ...ssh.env, FAKE_SSH_SLEEP: '30' }), stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('sleeping') && resolve()));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 130);
  } finally {
    rmSync(ssh.dir, { recursive: true, force: true });
  }
});
