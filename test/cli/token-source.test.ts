// Where a peer command takes its token from, and what it says about each source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

// Nothing listens on port 9 of loopback: every run below ends at "cannot connect", after the token was taken.
const SERVER = 'http://127.0.0.1:9';
const TOKEN = 'trv1_' + 'A'.repeat(43);

test('--token on the command line works but warns that others can read it; TRAVERSE_TOKEN does not warn', async () => {
  const cli = await runCli(['ping', 'dev-box', '-n', '1', '--server', SERVER, '--token', TOKEN], { env: { TRAVERSE_TOKEN: '' } });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /warning: --token on the command line can be read by other users .*TRAVERSE_TOKEN or --token-file/);
  const env = await runCli(['ping', 'dev-box', '-n', '1', '--server', SERVER], { env: { TRAVERSE_TOKEN: TOKEN } });
  assert.equal(env.code, 1);
  assert.doesNotMatch(env.stderr, /warning/);
  assert.match(env.stderr, /cannot connect/);
});

test('--token-file reads a private file or standard input; a file others can read is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-token-file-'));
  try {
    const file = join(dir, 'token');
    writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    const ok = await runCli(['ping', 'dev-box', '-n', '1', '--server', SERVER, '--token-file', file], { env: { TRAVERSE_TOKEN: '' } });
    assert.equal(ok.code, 1);
    assert.match(ok.stderr, /cannot connect/);
    assert.doesNotMatch(ok.stderr, /warning|no token/);

    chmodSync(file, 0o644);
    const open = await runCli(['ping', 'dev-box', '--server', SERVER, '--token-file', file], { env: { TRAVERSE_TOKEN: '' } });
    assert.equal(open.code, 2);
    assert.match(open.stderr, /readable by other users \(mode 0644\); run `chmod 600/);

    const stdin = await runCli(['ping', 'dev-box', '-n', '1', '--server', SERVER, '--token-file', '-'], { env: { TRAVERSE_TOKEN: '' }, input: `${TOKEN}\n` });
    assert.equal(stdin.code, 1);
    assert.match(stdin.stderr, /cannot connect/);

    const proxy = await runCli(['proxy', 'dev-box', '127.0.0.1:22', '--server', SERVER, '--token-file', '-'], { env: { TRAVERSE_TOKEN: '' }, input: TOKEN });
    assert.equal(proxy.code, 2);
    assert.match(proxy.stderr, /standard input carries the stream/);

    const both = await runCli(['ping', 'dev-box', '--server', SERVER, '--token', TOKEN, '--token-file', file], { env: { TRAVERSE_TOKEN: '' } });
    assert.equal(both.code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
