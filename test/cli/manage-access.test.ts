// Managing access as processes (node bin/traverse.js, built dist/): token rotate, token revoke
// --id, identity delete, allow add/remove/list, and a running server applying each within 2 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode, PROTOCOL_PATH } from '../../src/coordination/protocol.js';
import { RawPeer } from '../server/helpers.js';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import type { ServerMessage } from '../../src/coordination/protocol.js';

const BIN = fileURLToPath(new URL('../../../bin/traverse.js', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(); // a pipe, not a terminal
  });
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

/** Runs a command that must succeed; returns its stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await run(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Runs a command that must fail with `code` and one `traverse: ` line matching `message`. */
async function fails(code: number, message: RegExp, ...args: string[]): Promise<void> {
  const r = await run(args);
  assert.equal(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^traverse: /);
  assert.match(r.stderr, message);
}

interface Listed {
  kind: string;
  name: string;
  allow?: string[];
  tokens: { id: string; state: string }[];
}

async function listed(dir: string): Promise<Listed[]> {
  return (JSON.parse(await ok('token', 'list', '--data', dir, '--json')) as { identities: Listed[] }).identities;
}

test('rotate, revoke --id, identity delete and allow add/remove/list as processes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-cli-'));
  try {
    // None of them creates a database.
    for (const args of [
      ['token', 'rotate', '--agent', 'ws1'],
      ['token', 'revoke', '--id', 'abcdef12'],
      ['identity', 'delete', '--agent', 'ws1', '--yes'],
      ['allow', 'add', '--client', 'laptop', '--agent', 'ws1'],
      ['allow', 'list'],
    ]) {
      await fails(1, /no database in/, ...args, '--data', join(dir, 'none'));
    }

    await ok('token', 'create', '--data', dir, '--agent', 'ws1');
    await ok('token', 'create', '--data', dir, '--client', 'laptop', '--allow', 'ws1');
    const first = await listed(dir);
    const oldId = first.find((i) => i.name === 'laptop')!.tokens[0]!.id;

    // rotate: a new token on the last line, the old one revoked.
    const rotated = await ok('token', 'rotate', '--data', dir, '--client', 'laptop', '--expires', '30d');
    assert.match(lastLine(rotated), /^trv1_[A-Za-z0-9_-]{43}$/);
    assert.match(rotated, new RegExp(`^Created token [0-9a-f]{8} for client "laptop", expires \\S+; revoked ${oldId}\\.`));
    const laptop = (await listed(dir)).find((i) => i.name === 'laptop')!;
    assert.deepEqual(laptop.tokens.map((t) => t.state), ['revoked', 'active']);
    const json = JSON.parse(await ok('token', 'rotate', '--data', dir, '--client', 'laptop', '--json')) as { tokenId: string; revoked: string[]; token: string };
    assert.deepEqual(json.revoked, [laptop.tokens[1]!.id]);
    assert.match(json.token, /^trv1_/);
    await fails(1, /no agent named "nobody"/, 'token', 'rotate', '--data', dir, '--agent', 'nobody');
    await fails(2, /exactly one identity/, 'token', 'rotate', '--data', dir);
    await fails(2, /--expires|duration/i, 'token', 'rotate', '--data', dir, '--client', 'laptop', '--expires', 'soon');

    // revoke --id: one token, by the id token list shows.
    await ok('token', 'create', '--data', dir, '--agent', 'ws1'); // ws1 has two tokens now
    const ws1 = (await listed(dir)).find((i) => i.name === 'ws1')!;
    const [keep, drop] = ws1.tokens.map((t) => t.id);
    assert.match(await ok('token', 'revoke', '--data', dir, '--id', drop!), new RegExp(`^Revoked token ${drop} of agent "ws1"`));
    assert.deepEqual((await listed(dir)).find((i) => i.name === 'ws1')!.tokens.map((t) => `${t.id}:${t.state}`), [`${keep}:active`, `${drop}:revoked`]);
    assert.match(await ok('token', 'revoke', '--data', dir, '--id', drop!), /already revoked/);
    await fails(1, /no token with id 00000000/, 'token', 'revoke', '--data', dir, '--id', '00000000');
    await fails(2, /token id is the 8 hex characters/, 'token', 'revoke', '--data', dir, '--id', 'xyz');
    await fails(2, /not both/, 'token', 'revoke', '--data', dir, '--id', keep!, '--agent', 'ws1');
    // An id that matches two tokens is refused: plant a token whose hash starts like ws1's.
    const store = SqliteStore.open(dir);
    const other = await store.ensureIdentity('client', 'twin', Date.now());
    await store.createToken(other.id, keep!.padEnd(64, 'f'), Date.now(), null);
    await store.close();
    await fails(1, new RegExp(`token id ${keep} is ambiguous, it matches 2 tokens \\(${keep} of agent "ws1", ${keep} of client "twin"\\)`), 'token', 'revoke', '--data', dir, '--id', keep!);
    await ok('identity', 'delete', '--data', dir, '--client', 'twin', '--yes');

    // allow add / remove / list.
    assert.equal(await ok('allow', 'add', '--data', dir, '--client', 'laptop', '--agent', 'ws2, ws3'), 'Client "laptop" may reach: ws1, ws2, ws3.\n');
    assert.equal(await ok('allow', 'list', '--data', dir), 'CLIENT  MAY REACH\nlaptop  ws1, ws2, ws3\n');
    const removed = await ok('allow', 'remove', '--data', dir, '--client', 'laptop', '--agent', 'ws2,zz');
    assert.match(removed, /^Removed ws2 from the allow list of client "laptop"/);
    assert.match(removed, /Not in the list before: zz\./);
    assert.match(removed, /It may still reach: ws1, ws3\./);
    await fails(1, /was not allowed to reach zz/, 'allow', 'remove', '--data', dir, '--client', 'laptop', '--agent', 'zz');
    await fails(1, /no client named "ghost"/, 'allow', 'add', '--data', dir, '--client', 'ghost', '--agent', 'ws1');
    await fails(2, /--agent AGENT/, 'allow', 'add', '--data', dir, '--client', 'laptop');
    await fails(2, /--client NAME/, 'allow', 'remove', '--data', dir, '--agent', 'ws1');
    await fails(2, /"bad name" is not a valid agent name/, 'allow', 'add', '--data', dir, '--client', 'laptop', '--agent', 'bad name');
    assert.deepEqual(JSON.parse(await ok('allow', 'list', '--data', dir, '--client', 'laptop', '--json')), {
      clients: [{ name: 'laptop', allow: ['ws1', 'ws3'] }],
    });

    // identity delete: --yes is required without a terminal; the agent leaves every allow list.
    await fails(2, /without confirmation: standard input is not a terminal, pass --yes/, 'identity', 'delete', '--data', dir, '--agent', 'ws1');
    await fails(1, /no agent named "nobody"/, 'identity', 'delete', '--data', dir, '--agent', 'nobody', '--yes');
    const deleted = await ok('identity', 'delete', '--data', dir, '--agent', 'ws1', '--yes');
    assert.match(deleted, /^Deleted agent "ws1": 2 tokens \(1 still active\), 1 allow rule, 0 history rows/);
    assert.deepEqual((await listed(dir)).map((i) => `${i.kind}:${i.name}:${(i.allow ?? []).join(',')}`), ['client:laptop:ws3']);
    await ok('identity', 'delete', '--data', dir, '--client', 'laptop', '--yes');
    assert.deepEqual(await listed(dir), []);
    assert.match(await ok('allow', 'list', '--data', dir), /^No clients/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function startServer(dir: string): Promise<{ url: string; ws: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', '--data', dir, '--stun', 'disable'], {
    env: { ...process.env, TRAVERSE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 5000);
    child.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m && /\n\s*data\s/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, ws: `${url.replace('http', 'ws')}${PROTOCOL_PATH}`, child };
}

/** Asks for a tunnel and returns the server's answer to this request (open or waiting, or refused). */
async function askTunnel(peer: RawPeer, agent: string): Promise<Extract<ServerMessage, { type: 'tunnel' }>> {
  const from = peer.messages.length;
  peer.send({ type: 'tunnel', agent });
  const m = await peer.waitFor((x) => peer.messages.indexOf(x) >= from && x.type === 'tunnel' && x.agent === agent, 2000);
  assert.ok(m.type === 'tunnel');
  return m;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

test('a running server closes a rotated-away token, a deleted identity, and a tunnel no longer allowed within 2 s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-cli-'));
  await ok('token', 'create', '--data', dir, '--admin', 'ops'); // the database exists before the server starts
  const server = await startServer(dir);
  try {
    const agentToken = lastLine(await ok('token', 'create', '--data', dir, '--agent', 'ws1'));
    const otherAgentToken = lastLine(await ok('token', 'create', '--data', dir, '--agent', 'ws2'));
    const clientToken = lastLine(await ok('token', 'create', '--data', dir, '--client', 'laptop', '--allow', 'ws1,ws2'));
    const agent = await RawPeer.connect(server.ws, agentToken, 'agent');
    const otherAgent = await RawPeer.connect(server.ws, otherAgentToken, 'agent');
    const client = await RawPeer.connect(server.ws, clientToken, 'client');
    for (const name of ['ws1', 'ws2']) assert.notEqual((await askTunnel(client, name)).status, 'refused');

    // allow remove: the tunnel to ws2 ends, the connection and the tunnel to ws1 stay.
    await ok('allow', 'remove', '--data', dir, '--client', 'laptop', '--agent', 'ws2');
    const ended = await client.waitFor((m) => m.type === 'tunnel' && m.agent === 'ws2' && m.status === 'closed', 2000);
    assert.deepEqual(ended, { type: 'tunnel', agent: 'ws2', status: 'closed', reason: 'no longer allowed' });
    assert.equal((await askTunnel(client, 'ws2')).status, 'refused');
    assert.equal(client.closed, null);
    // allow add: reachable again without reconnecting.
    await ok('allow', 'add', '--data', dir, '--client', 'laptop', '--agent', 'ws2');
    const t0 = Date.now();
    while ((await askTunnel(client, 'ws2')).status === 'refused') {
      assert.ok(Date.now() - t0 < 2000, 'the new rule applies within 2 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    // rotate: the old token's connection closes with 4001, the new token connects.
    const rotated = lastLine(await ok('token', 'rotate', '--data', dir, '--client', 'laptop'));
    const closed = await client.waitClosed(2000);
    assert.deepEqual(closed, { code: CloseCode.revoked, reason: 'token revoked; ask an administrator for a new one' });
    await assert.rejects(RawPeer.open(server.ws, clientToken, 'client'), /HTTP 401/);
    const again = await RawPeer.connect(server.ws, rotated, 'client');
    assert.notEqual((await askTunnel(again, 'ws1')).status, 'refused');

    // identity delete: the agent's connection closes, and the client's tunnel to it ends.
    await ok('identity', 'delete', '--data', dir, '--agent', 'ws1', '--yes');
    assert.deepEqual(await agent.waitClosed(2000), { code: CloseCode.revoked, reason: 'agent "ws1" was deleted by an administrator' });
    await again.waitFor((m) => m.type === 'tunnel' && m.agent === 'ws1' && m.status === 'closed', 2000);
    await assert.rejects(RawPeer.open(server.ws, agentToken, 'agent'), /HTTP 401/);
    assert.equal(otherAgent.closed, null, 'other identities are untouched');
    assert.equal(again.closed, null);
    again.ws.close();
    otherAgent.ws.close();
  } finally {
    await stop(server.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('traverse status with an admin token lists offline identities with last seen; other tokens see what they did', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-cli-'));
  const admin = lastLine(await ok('token', 'create', '--data', dir, '--admin', 'ops'));
  const server = await startServer(dir);
  try {
    const agentToken = lastLine(await ok('token', 'create', '--data', dir, '--agent', 'ws1'));
    const clientToken = lastLine(await ok('token', 'create', '--data', dir, '--client', 'laptop', '--allow', 'ws1'));
    await ok('token', 'create', '--data', dir, '--agent', 'idle');
    const agent = await RawPeer.connect(server.ws, agentToken, 'agent');
    const client = await RawPeer.connect(server.ws, clientToken, 'client');
    client.ws.close();
    await client.waitClosed();
    type Json = { identities: { kind: string; name: string; onlineNodes: number; lastConnectedAt: number | null; lastDisconnectedAt: number | null }[] };
    const laptopOf = (j: Json) => j.identities.find((i) => i.name === 'laptop')!;
    // The disconnect is recorded asynchronously.
    let json: Json = { identities: [] };
    for (let i = 0; i < 50; i++) {
      json = JSON.parse(await ok('status', '--server', server.url, '--token', admin, '--json')) as Json;
      if (laptopOf(json).lastDisconnectedAt !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(json.identities.map((i) => `${i.kind}:${i.name}:${i.onlineNodes}`), ['admin:ops:0', 'agent:idle:0', 'agent:ws1:1', 'client:laptop:0']);
    const laptop = laptopOf(json);
    assert.ok(laptop.lastConnectedAt !== null && laptop.lastDisconnectedAt !== null && laptop.lastDisconnectedAt >= laptop.lastConnectedAt);
    const text = await ok('status', '--server', server.url, '--token', admin);
    assert.match(text, /^1 identity connected, 1 node\(s\):\n\s+agent ws1\s+\(1 node\)/);
    assert.match(text, /\n2 identities offline:\n {2}client laptop {2}last seen \d{4}-\d\d-\d\dT[\d:.]+Z\n {2}agent idle {2}no connection on record\n0 tunnel\(s\):/);
    assert.ok(text.includes(`last seen ${new Date(laptop.lastDisconnectedAt!).toISOString()}`), text);

    // Not an admin: today's output, no offline section, and the view itself is 403.
    const mine = await ok('status', '--server', server.url, '--token', agentToken);
    assert.ok(!mine.includes('offline'), mine);
    assert.match(mine, /^1 identity connected/);
    assert.ok(!('identities' in (JSON.parse(await ok('status', '--server', server.url, '--token', agentToken, '--json')) as object)));
    const res = await fetch(`${server.url}/api/v1/identities`, { headers: { authorization: `Bearer ${agentToken}` } });
    assert.equal(res.status, 403);
    agent.ws.close();
  } finally {
    await stop(server.child);
    rmSync(dir, { recursive: true, force: true });
  }
});
