// `traverse token` and `traverse server` as processes (node bin/traverse.js, built dist/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode, PROTOCOL_PATH } from '../../src/coordination/protocol.js';
import { RawPeer, httpGet } from '../server/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/traverse.js', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

test('token create/list/revoke as processes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-cli-'));
  try {
    const agent = await run(['token', 'create', '--data', dir, '--agent', 'ws1']);
    assert.equal(agent.code, 0, agent.stderr);
    assert.match(lastLine(agent.stdout), /^trv1_[A-Za-z0-9_-]{43}$/);
    // TRAVERSE_DATA is the twin of --data.
    const client = await run(['token', 'create', '--client', 'laptop', '--allow', 'ws1,ws2', '--expires', '30d'], { TRAVERSE_DATA: dir });
    assert.equal(client.code, 0, client.stderr);
    assert.match(client.stdout, /It may reach: ws1, ws2/);
    const secret = lastLine(client.stdout);
    const json = await run(['token', 'create', '--data', dir, '--admin', 'ops', '--json']);
    const parsed = JSON.parse(lastLine(json.stdout)) as { token: string; kind: string };
    assert.equal(parsed.kind, 'admin');

    const list = await run(['token', 'list', '--data', dir, '--json']);
    assert.equal(list.code, 0);
    assert.ok(!list.stdout.includes(secret) && !list.stdout.includes(parsed.token), 'secrets never listed');
    const ids = (JSON.parse(list.stdout) as { identities: { kind: string; name: string; allow?: string[]; tokens: { state: string }[] }[] }).identities;
    assert.deepEqual(ids.map((i) => `${i.kind}:${i.name}`), ['admin:ops', 'agent:ws1', 'client:laptop']);
    assert.deepEqual(ids[2]!.allow, ['ws1', 'ws2']);
    const text = await run(['token', 'list', '--data', dir]);
    assert.match(text.stdout, /^KIND\s+NAME/);

    const revoked = await run(['token', 'revoke', '--data', dir, '--client', 'laptop']);
    assert.equal(revoked.code, 0);
    assert.match(revoked.stdout, /Revoked 1 token of client "laptop"/);
    const after = JSON.parse((await run(['token', 'list', '--data', dir, '--json'])).stdout) as { identities: { name: string; tokens: { state: string }[] }[] };
    assert.equal(after.identities.find((i) => i.name === 'laptop')!.tokens[0]!.state, 'revoked');

    // Bad arguments exit 2; a failed operation exits 1 with one line.
    for (const args of [
      ['token', 'create', '--data', dir, '--agent', 'a', '--client', 'b'],
      ['token', 'create', '--data', dir, '--agent', 'a', '--allow', 'x'],
      ['token', 'create', '--data', dir, '--client', 'a', '--expires', 'soon'],
      ['token', 'create', '--data', dir, '--agent', 'bad name'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^traverse: /);
    }
    const missing = await run(['token', 'revoke', '--data', dir, '--agent', 'nobody']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.equal((await run(['token', 'list', '--data', join(dir, 'nope')])).code, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('traverse server as a process: starts, serves, applies a `token revoke` from another process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-cli-'));
  const server = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', '--data', dir, '--stun', 'disable'], {
    env: { ...process.env, TRAVERSE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 5000);
      server.stdout.on('data', () => {
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m && out.includes('token create')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    assert.match(out, /No identities yet/);
    assert.equal((await httpGet(`${url}/healthz`)).status, 200);
    const token = lastLine((await run(['token', 'create', '--data', dir, '--agent', 'ws1'])).stdout);
    const peer = await RawPeer.connect(`${url.replace('http', 'ws')}${PROTOCOL_PATH}`, token, 'agent');
    const config = peer.messages[0];
    assert.deepEqual(config?.type === 'config' && config.stun, []);
    // `traverse status` reads the API with the env twins TRAVERSE_SERVER and TRAVERSE_TOKEN.
    const admin = lastLine((await run(['token', 'create', '--data', dir, '--admin', 'ops'])).stdout);
    const status = await run(['status'], { TRAVERSE_SERVER: url, TRAVERSE_TOKEN: admin });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /1 identity connected, 1 node\(s\):\n\s+agent\s+ws1/);
    const refused = await run(['status', '--server', url, '--token', 'trv1_nope_nope_nope_nope']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused the token/);
    const revoke = await run(['token', 'revoke', '--data', dir, '--agent', 'ws1']);
    assert.equal(revoke.code, 0, revoke.stderr);
    const closed = await peer.waitClosed(3000);
    assert.equal(closed.code, CloseCode.revoked);
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
