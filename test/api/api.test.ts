// The programmatic API, used only through the package's entry point (src/index.ts), against a
// real coordination server on loopback. Both nodes offer only loopback candidates and run no
// STUN. The last test checks that close() leaves no handle: nothing of Traverse keeps the
// process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, serve, TraverseError, type Agent, type Connection, type NodeOptions, type Path, type StreamRequest } from '../../src/index.js';
import { readAll } from '../helpers/read-all.js';
import { startTestServer, type TestServer } from '../server/helpers.js';

/** What every node in these tests shares: loopback only, no STUN, no TCP lanes. */
function loopback(t: TestServer, token: string): NodeOptions {
  return { server: t.server.url, token, stun: [], localAddresses: () => ['127.0.0.1'], tcpLane: false, connectTimeoutMs: 5000 };
}

async function tokens(t: TestServer): Promise<{ agent: string; client: string }> {
  return { agent: await t.token('agent', 'ws1'), client: await t.token('client', 'laptop', { allow: ['ws1'] }) };
}


/** Resolves with the first path for which `pred` holds: the current one, or a later 'path' event. */
function pathWhere(conn: Connection, pred: (p: Path) => boolean, timeoutMs: number): Promise<Path> {
  if (pred(conn.path)) return Promise.resolve(conn.path);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.off('path', onPath);
      reject(new Error(`the path is still ${JSON.stringify(conn.path)} after ${timeoutMs} ms`));
    }, timeoutMs);
    const onPath = (p: Path): void => {
      if (!pred(p)) return;
      clearTimeout(timer);
      conn.off('path', onPath);
      resolve(p);
    };
    conn.on('path', onPath);
  });
}

test('serve with onStream and connect: bytes both ways with half-close, a direct path, a refused stream, close', async () => {
  const t = await startTestServer();
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    const tok = await tokens(t);
    const requests: StreamRequest[] = [];
    agent = await serve({
      ...loopback(t, tok.agent),
      accept: (req) => (req.target.startsWith('echo') ? true : `no service "${req.target}" here`),
      onStream: (req, stream) => {
        requests.push(req);
        // Echo, then end our side only after the client ended its own: half-close both ways.
        stream.pipe(stream);
      },
    });
    assert.equal(agent.name, 'ws1');
    assert.match(agent.key, /^[0-9a-f]{64}$/);
    assert.equal(agent.allowTargets, null);

    conn = await connect('ws1', loopback(t, tok.client));
    assert.equal(conn.agent, 'ws1');
    assert.match(conn.key, /^[0-9a-f]{64}$/);

    // Loopback candidates only: hole punching finds the agent's 127.0.0.1 endpoint.
    const direct = await pathWhere(conn, (p) => p.kind === 'direct', 10_000);
    assert.ok(direct.kind === 'direct' && direct.endpoint.startsWith('127.0.0.1:'), `direct on loopback: ${JSON.stringify(direct)}`);
    const pong = await conn.ping();
    assert.ok(pong, 'the agent answers a ping');
    assert.equal(pong.path.kind, 'direct');
    assert.ok(pong.latencyMs >= 0);

    // 512 KiB out; our FIN reaches the agent's handler, its echo and FIN come back.
    const stream = await conn.openStream('echo:1');
    const data = randomBytes(512 << 10);
    const back = readAll(stream);
    stream.end(data);
    const got = await back;
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data), 'the echo is the bytes sent');
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.target, 'echo:1');
    assert.equal(requests[0]!.from.name, 'laptop');
    assert.equal(requests[0]!.from.key, conn.key);

    // Two streams at once are independent.
    const [a, b] = await Promise.all([conn.openStream('echo:a'), conn.openStream('echo:b')]);
    const [ga, gb] = [readAll(a), readAll(b)];
    a.end('alpha');
    b.end('beta');
    assert.equal((await ga).toString(), 'alpha');
    assert.equal((await gb).toString(), 'beta');

    // The app's accept says no: a typed error with the agent's reason.
    await assert.rejects(conn.openStream('db:5432'), (err: unknown) => {
      assert.ok(err instanceof TraverseError);
      assert.equal(err.code, 'STREAM_REFUSED');
      assert.match(err.message, /no service "db:5432" here/);
      return true;
    });
    await assert.rejects(conn.openStream('x'), (err: unknown) => err instanceof TraverseError && err.code === 'INVALID_ARGUMENT');

    // Closing: 'closed' with null, then every call says CLOSED.
    const closed = once(conn, 'closed');
    await conn.close();
    assert.deepEqual(await closed, [null]);
    await assert.rejects(conn.openStream('echo:1'), (err: unknown) => err instanceof TraverseError && err.code === 'CLOSED');
    assert.equal(conn.path.kind, 'relay');
  } finally {
    await conn?.close();
    await agent?.close();
    await t.close();
  }
});

test('an onStream agent: the agent ends its side first while the client still writes', async () => {
  const t = await startTestServer();
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    const tok = await tokens(t);
    let gotAll: (b: Buffer) => void = () => undefined;
    const received = new Promise<Buffer>((resolve) => (gotAll = resolve));
    agent = await serve({
      ...loopback(t, tok.agent),
      onStream: (_req, stream) => {
        // Greet, end our side at once, and keep reading what the client sends until its FIN.
        stream.end('hello from the agent');
        void readAll(stream).then(gotAll);
      },
    });
    conn = await connect('ws1', loopback(t, tok.client));
    const stream = await conn.openStream('greeting');
    const greeting = await readAll(stream); // the agent's FIN arrived; our writable side is still open
    assert.equal(greeting.toString(), 'hello from the agent');
    assert.equal(stream.writable, true);
    stream.end('and goodbye from the client');
    assert.equal((await received).toString(), 'and goodbye from the client');
  } finally {
    await conn?.close();
    await agent?.close();
    await t.close();
  }
});

test('back-pressure both ways: 8 MiB to a slow reader, and its digest back', async () => {
  const t = await startTestServer();
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    const tok = await tokens(t);
    agent = await serve({
      ...loopback(t, tok.agent),
      onStream: (_req, stream) => {
        const hash = createHash('sha256');
        // A reader that takes its time: the writer must wait on drain, not buffer everything.
        stream.on('data', (d: Buffer) => {
          hash.update(d);
          stream.pause();
          setTimeout(() => stream.resume(), 1);
        });
        stream.on('end', () => stream.end(hash.digest('hex')));
      },
    });
    conn = await connect('ws1', loopback(t, tok.client));
    const stream = await conn.openStream('digest');
    const data = randomBytes(8 << 20);
    const back = readAll(stream);
    let waited = 0;
    for (let off = 0; off < data.length; off += 64 << 10) {
      if (!stream.write(data.subarray(off, off + (64 << 10)))) {
        waited++;
        await once(stream, 'drain');
      }
    }
    stream.end();
    assert.equal((await back).toString(), createHash('sha256').update(data).digest('hex'));
    assert.ok(waited > 0, 'the writer was held back at least once');
  } finally {
    await conn?.close();
    await agent?.close();
    await t.close();
  }
});

test('serve without onStream connects streams to a TCP server on 127.0.0.1 that allowTargets permits, and refuses others', async () => {
  const t = await startTestServer();
  const sockets = new Set<Socket>();
  const target = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const port = (target.address() as AddressInfo).port;
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    const tok = await tokens(t);
    await assert.rejects(serve({ ...loopback(t, tok.agent), allowTargets: ['not a pattern'] }), (err: unknown) => {
      return err instanceof TraverseError && err.code === 'INVALID_ARGUMENT';
    });
    agent = await serve({ ...loopback(t, tok.agent), allowTargets: [`127.0.0.1:${port}`] });
    assert.deepEqual(agent.allowTargets, [`127.0.0.1:${port}`]);
    conn = await connect('ws1', loopback(t, tok.client));

    const stream = await conn.openStream(`127.0.0.1:${port}`);
    const data = randomBytes(256 << 10);
    const back = readAll(stream);
    stream.end(data);
    assert.ok((await back).equals(data), 'the TCP echo server sent back the bytes');

    // Another port on the same host is not in the allow list: the agent refuses it.
    await assert.rejects(conn.openStream(`127.0.0.1:${port === 65535 ? port - 1 : port + 1}`), (err: unknown) => {
      assert.ok(err instanceof TraverseError);
      assert.equal(err.code, 'STREAM_REFUSED');
      return true;
    });
  } finally {
    await conn?.close();
    await agent?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => target.close(() => resolve()));
    await t.close();
  }
});

test('connect: a tunnel the server refuses, an agent that is away, a server that is not there', async () => {
  const t = await startTestServer();
  try {
    const stranger = await t.token('client', 'stranger');
    await t.token('agent', 'ws1');
    await assert.rejects(connect('ws1', { ...loopback(t, stranger), tunnelTimeoutMs: 3000 }), (err: unknown) => {
      assert.ok(err instanceof TraverseError);
      assert.equal(err.code, 'TUNNEL_REFUSED');
      return true;
    });
    const laptop = await t.token('client', 'laptop', { allow: ['ws1'] });
    await assert.rejects(connect('ws1', { ...loopback(t, laptop), tunnelTimeoutMs: 3000 }), (err: unknown) => {
      assert.ok(err instanceof TraverseError);
      assert.equal(err.code, 'AGENT_UNAVAILABLE');
      return true;
    });
    await assert.rejects(connect('ws1', { ...loopback(t, 'trv1_wrong'), connectTimeoutMs: 2000 }), (err: unknown) => {
      assert.ok(err instanceof TraverseError);
      assert.equal(err.code, 'CONNECT_FAILED');
      return true;
    });
  } finally {
    await t.close();
  }
});

test("a revoked token ends the connection: 'closed' with SERVER_CLOSED, and the agent sees the client's path", async () => {
  const t = await startTestServer();
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    const tok = await tokens(t);
    agent = await serve({ ...loopback(t, tok.agent), onStream: (_r, s) => s.destroy() });
    const agentSaw = new Promise<[string, Path]>((resolve) => agent!.on('path', (client, path) => path.kind === 'direct' && resolve([client.name, path])));
    conn = await connect('ws1', loopback(t, tok.client));
    const [client, path] = await agentSaw;
    assert.equal(client, 'laptop');
    assert.equal(path.kind, 'direct');
    const closed = once(conn, 'closed');
    await t.store.revokeIdentity('client', 'laptop', Date.now());
    const [err] = (await closed) as [TraverseError | null];
    assert.ok(err instanceof TraverseError);
    assert.equal(err.code, 'SERVER_CLOSED');
    await assert.rejects(conn.openStream('echo:1'), (e: unknown) => e instanceof TraverseError && e.code === 'CLOSED');
  } finally {
    await conn?.close();
    await agent?.close();
    await t.close();
  }
});

/** Runs the close-and-exit fixture; resolves with the ms from its "closed" line to its exit. */
async function exitAfterClose(mode: 'direct' | 'relay' | 'target'): Promise<number> {
  const fixture = fileURLToPath(new URL('./fixtures/close-and-exit.js', import.meta.url));
  const child = spawn(process.execPath, [fixture, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!closedAt && out.includes('closed')) closedAt = Date.now();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  assert.equal(code, 0, `the fixture failed: ${out}`);
  assert.match(out, new RegExp(`closed ${mode}`));
  return Date.now() - closedAt;
}

for (const mode of ['direct', 'relay', 'target'] as const) {
  const what = mode === 'target' ? 'a stream to a TCP target still open, the agent closing first' : `a stream still open on a ${mode} path`;
  test(`close() lets the process exit at once, with ${what}`, async () => {
    const ms = await exitAfterClose(mode);
    assert.ok(ms < 2000, `the process took ${ms} ms to exit after close()`);
  });
}

test('close() frees everything: no socket, timer or handle of Traverse is left', async () => {
  const counts = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
    return m;
  };
  const before = counts();
  const t = await startTestServer();
  const tok = await tokens(t);
  const agent = await serve({
    ...loopback(t, tok.agent),
    onStream: (_r, s) => {
      s.on('error', () => undefined); // the client's close() resets the stream still open
      s.pipe(s);
    },
  });
  const conn = await connect('ws1', loopback(t, tok.client));
  const s = await conn.openStream('echo:1');
  const back = readAll(s);
  s.end('x');
  assert.equal((await back).toString(), 'x');
  // One stream still open on each side when closing.
  const held = await conn.openStream('echo:2');
  held.on('error', () => undefined);
  await conn.close();
  await agent.close();
  await t.close();
  // Handles close on the next turns of the loop; give them a moment.
  const deadline = Date.now() + 3000;
  let left: string[] = [];
  for (;;) {
    left = [...counts()].filter(([r, n]) => n > (before.get(r) ?? 0)).map(([r, n]) => `${r} x${n - (before.get(r) ?? 0)}`);
    if (left.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(left, [], 'resources left after close');
});
