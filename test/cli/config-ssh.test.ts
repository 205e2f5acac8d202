// `traverse config-ssh`: the block rewriting as pure functions, then the command as a process
// against an ssh config in a temporary folder (and a stand-in for the server's peers API).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCK_END, BLOCK_START, findBlock, renderBlock, rewriteConfig } from '../../src/cli/config-ssh.js';
import { unifiedDiff } from '../../src/cli/unified-diff.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const hosts = (...agents: string[]) => agents.map((agent) => ({ agent, proxyCommand: `/usr/local/bin/traverse proxy ${agent} 127.0.0.1:22` }));
const USER_CONFIG = 'Host *\n  ServerAliveInterval 30\n\nHost work\n  HostName work.example\n  User me\n';

test('renderBlock: markers around one Host section per agent, with HostKeyAlias and ProxyCommand', () => {
  const block = renderBlock(hosts('dev-box'));
  const lines = block.trimEnd().split('\n');
  assert.equal(lines[0], BLOCK_START);
  assert.equal(lines.at(-1), BLOCK_END);
  assert.ok(block.endsWith('\n'));
  assert.ok(lines.includes('Host traverse.dev-box'));
  assert.ok(lines.includes('  HostKeyAlias traverse.dev-box'));
  assert.ok(lines.includes('  ProxyCommand /usr/local/bin/traverse proxy dev-box 127.0.0.1:22'));
});

test('rewriteConfig: inserts at the end after a blank line, into an empty file as is', () => {
  const block = renderBlock(hosts('a'));
  assert.equal(rewriteConfig('', block), block);
  assert.equal(rewriteConfig(USER_CONFIG, block), USER_CONFIG + '\n' + block);
  assert.equal(rewriteConfig('Host x', block), 'Host x\n\n' + block, 'a missing final newline is added');
  assert.equal(rewriteConfig('Host x\n\n', block), 'Host x\n\n' + block, 'no second blank line');
});

test('rewriteConfig: replaces the block where it stands; the text around it is kept byte for byte', () => {
  const before = 'Host first\n  User a\n\n';
  const after = '\n# mine, after the block\nHost last\n  Port 2200\n';
  const old = before + renderBlock(hosts('a')) + after;
  const next = rewriteConfig(old, renderBlock(hosts('a', 'b')));
  assert.equal(next, before + renderBlock(hosts('a', 'b')) + after);
  // Hand edits inside the block are replaced too.
  const edited = old.replace('  HostKeyAlias traverse.a\n', '  HostKeyAlias traverse.a\n  User somebody\n');
  assert.equal(rewriteConfig(edited, renderBlock(hosts('a'))), old);
});

test('rewriteConfig: removing takes out the block (and the blank line insertion added) and nothing else', () => {
  const block = renderBlock(hosts('a', 'b'));
  assert.equal(rewriteConfig(rewriteConfig(USER_CONFIG, block), null), USER_CONFIG);
  assert.equal(rewriteConfig(block, null), '');
  const middle = 'Host x\n' + block + 'Host y\n';
  assert.equal(rewriteConfig(middle, null), 'Host x\nHost y\n');
  assert.equal(rewriteConfig(USER_CONFIG, null), USER_CONFIG, 'no block: nothing to remove');
});

test('rewriteConfig is idempotent: the same block twice changes nothing the second time', () => {
  for (const start of ['', USER_CONFIG, 'Host x', USER_CONFIG + '\n' + renderBlock(hosts('old'))]) {
    const once = rewriteConfig(start, renderBlock(hosts('a', 'b')));
    assert.equal(rewriteConfig(once, renderBlock(hosts('a', 'b'))), once);
    const removed = rewriteConfig(once, null);
    assert.equal(rewriteConfig(removed, null), removed);
  }
});

test('findBlock: a lone or doubled marker is an error, not a guess', () => {
  assert.equal(findBlock(USER_CONFIG), null);
  assert.throws(() => findBlock(`${USER_CONFIG}${BLOCK_START}\nHost a\n`), /found 1 and 0/);
  assert.throws(() => findBlock(`${BLOCK_END}\n${BLOCK_START}\n`), /comes before/);
  const block = renderBlock(hosts('a'));
  assert.throws(() => findBlock(block + block), /found 2 and 2/);
  // Markers with trailing spaces or no final newline still count.
  const loose = `Host x\n${BLOCK_START}  \nHost traverse.a\n${BLOCK_END}`;
  assert.deepEqual(findBlock(loose), { start: 7, end: loose.length });
});

test('unifiedDiff: hunks with three lines of context, as diff -u prints them', () => {
  assert.equal(unifiedDiff('a\n', 'a\n', 'x', 'y'), '');
  assert.equal(unifiedDiff('', 'a\nb\n', '/dev/null', 'f'), '--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+a\n+b\n');
  const old = '1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n';
  const next = '1\n2\n3\n4\n5\nsix\n7\n8\n9\n10\n';
  assert.equal(unifiedDiff(old, next, 'f', 'f'), '--- f\n+++ f\n@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+six\n 7\n 8\n 9\n');
  assert.equal(unifiedDiff('a\nb', 'a\nb\n', 'f', 'f'), '--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n');
  assert.equal(unifiedDiff('a\nb\nc\n', 'a\nc\n', 'f', 'f'), '--- f\n+++ f\n@@ -1,3 +1,2 @@\n a\n-b\n c\n');
});

// --- the command, as a process -----------------------------------------------------------

test('config-ssh --dry-run shows the diff and writes nothing; --yes writes; a second run changes nothing', async (t) => {
  const dir = tempDir(t, 'traverse-config-ssh-');
  const file = join(dir, 'config');
  writeFileSync(file, USER_CONFIG, { mode: 0o644 });
  const dry = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'dev-box', '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^--- ${file}\n\\+\\+\\+ ${file}\n@@ -4,3 \\+4,11 @@\n`));
  assert.match(dry.stdout, /\n\+Host traverse\.dev-box\n\+ {2}HostKeyAlias traverse\.dev-box\n\+ {2}ProxyCommand \S.* proxy dev-box 127\.0\.0\.1:22\n/);
  assert.match(dry.stdout, /dry run: .* not written\n$/);
  assert.equal(readFileSync(file, 'utf8'), USER_CONFIG);

  // No terminal and no --yes: the diff, then a refusal.
  const ask = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'dev-box']);
  assert.equal(ask.code, 2);
  assert.match(ask.stderr, /^traverse: .* not written: not a terminal.*--yes/);
  assert.equal(readFileSync(file, 'utf8'), USER_CONFIG);

  const write = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'dev-box', '--yes']);
  assert.equal(write.code, 0, write.stderr);
  assert.match(write.stdout, /wrote .*config \(1 host: traverse\.dev-box\)\n$/);
  const written = readFileSync(file, 'utf8');
  assert.ok(written.startsWith(USER_CONFIG + '\n' + BLOCK_START + '\n'));
  // The ProxyCommand runs this very traverse, by absolute path.
  const proxy = /^ {2}ProxyCommand (.*) proxy dev-box 127\.0\.0\.1:22$/m.exec(written)?.[1];
  assert.ok(proxy && proxy.split(' ').every((w) => w.startsWith('/')), `ProxyCommand ${proxy}`);
  assert.equal(statSync(file).mode & 0o777, 0o644, 'the mode of an existing file is kept');

  const again = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'dev-box', '--yes']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /is up to date \(1 host: traverse\.dev-box\); nothing written\n$/);
  assert.doesNotMatch(again.stdout, /^[-+@]/m);
  assert.equal(readFileSync(file, 'utf8'), written);
  // Without --yes too: there is nothing to confirm.
  assert.equal((await runCli(['config-ssh', '--ssh-config', file, '--agent', 'dev-box'])).code, 0);

  const removed = await runCli(['config-ssh', '--ssh-config', file, '--remove', '--yes']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(readFileSync(file, 'utf8'), USER_CONFIG);
});

test('config-ssh creates the folder (0700) and the file (0600), and writes through a symlink', async (t) => {
  const dir = tempDir(t, 'traverse-config-ssh-');
  const file = join(dir, 'home', '.ssh', 'config');
  const r = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'a', '--agent', 'b', '--yes']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^--- \/dev\/null\n/);
  assert.equal(statSync(join(dir, 'home', '.ssh')).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(readFileSync(file, 'utf8'), /Host traverse\.a\n[^]*Host traverse\.b\n/);

  const real = join(dir, 'dotfiles-config');
  writeFileSync(real, USER_CONFIG);
  const link = join(dir, 'linked-config');
  symlinkSync(real, link);
  const viaLink = await runCli(['config-ssh', '--ssh-config', link, '--agent', 'a', '--yes']);
  assert.equal(viaLink.code, 0, viaLink.stderr);
  assert.ok(readFileSync(real, 'utf8').includes('Host traverse.a'));
});

test('config-ssh: bad arguments exit 2, a broken block exits 1, each with one line', async (t) => {
  const dir = tempDir(t, 'traverse-config-ssh-');
  const file = join(dir, 'config');
  const env = { TRAVERSE_SERVER: undefined, TRAVERSE_TOKEN: undefined, TRAVERSE_TOKEN_FILE: undefined };
  const none = await runCli(['config-ssh', '--ssh-config', file], { env });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^traverse: no agents: pass --agent NAME/);
  const bad = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'a b']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^traverse: --agent "a b" is not an agent name/);
  const target = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'a', '--target', 'nope']);
  assert.equal(target.code, 2);
  assert.equal(existsSync(file), false);

  writeFileSync(file, `${BLOCK_START}\nHost traverse.a\n`);
  const broken = await runCli(['config-ssh', '--ssh-config', file, '--agent', 'a', '--yes']);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /^traverse: .*config: expected one .* found 1 and 0; fix the file by hand/);
  assert.equal(broken.stderr.trim().split('\n').length, 1);
});

test('config-ssh without --agent lists the agents from GET /api/v1/peers; neither server nor token lands in the file', async (t) => {
  const TOKEN = 'trv1_' + 'S'.repeat(43);
  const seen: (string | undefined)[] = [];
  const peer = (name: string, kind: 'agent' | 'client') => ({ name, kind, key: null, connectedAt: 1, remote: null, node: null });
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401).end('{"error":"unauthorized"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    // Two nodes of build-box, a client, and dev-box: two hosts, sorted.
    res.end(JSON.stringify({ peers: [peer('dev-box', 'agent'), peer('laptop', 'client'), peer('build-box', 'agent'), peer('build-box', 'agent')] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = tempDir(t, 'traverse-config-ssh-');
  try {
    const file = join(dir, 'config');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, TOKEN + '\n');
    chmodSync(tokenFile, 0o600);
    // (undefined: not in the child's environment at all)
    const r = await runCli(['config-ssh', '--ssh-config', file, '--yes'], { env: { TRAVERSE_SERVER: url, TRAVERSE_TOKEN: TOKEN, TRAVERSE_TOKEN_FILE: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(2 hosts: traverse\.build-box, traverse\.dev-box\)/);
    let text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(TOKEN) && !text.includes(url), text);
    assert.match(text, /reads TRAVERSE_SERVER and TRAVERSE_TOKEN/);

    // --token-file on the command line: its path goes into each ProxyCommand, the token does not.
    const withFile = await runCli(['config-ssh', '--ssh-config', file, '--yes', '--token-file', tokenFile], { env: { TRAVERSE_SERVER: url, TRAVERSE_TOKEN: undefined, TRAVERSE_TOKEN_FILE: undefined } });
    assert.equal(withFile.code, 0, withFile.stderr);
    text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(TOKEN) && !text.includes(url), text);
    assert.match(text, new RegExp(`ProxyCommand \\S.* proxy dev-box 127\\.0\\.0\\.1:22 --token-file ${tokenFile}\n`));
    assert.deepEqual(seen, [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);

    const refused = await runCli(['config-ssh', '--ssh-config', file, '--yes'], { env: { TRAVERSE_SERVER: url, TRAVERSE_TOKEN: 'trv1_wrong', TRAVERSE_TOKEN_FILE: undefined } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^traverse: the server refused the token/);
  } finally {
    server.close();
  }
});
