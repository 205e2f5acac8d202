// The dashboard with two `traverse server` processes on one real PostgreSQL (replicas): a session
// made on one server works on the other (sessions live in the database, no sticky sessions), each
// server's live views show the nodes of both with the server each is connected to, a path
// reported on one server shows on the other, and revoking the admin token ends the session on
// both within 2 s (requests refused, open live streams told). Peers speak the raw protocol over
// loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from '../../lab/postgres.js';
import { cliToken, startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { runCli } from '../helpers/cli.js';
import { skipOrFail } from '../helpers/required.js';
import { RawPeer, randomKey, sampleNode } from '../server/helpers.js';
import { PROTOCOL_PATH } from '../../src/coordination/protocol.js';
import type { NodeRow, Patch, Snapshot, TunnelRow } from '../../src/server/dashboard/wire.js';

const missing = postgresUnavailable();
let pg: TestPostgres | undefined;

before(async () => {
  if (!missing) pg = await startTestPostgres();
});
after(async () => pg?.stop());

/** One open live stream of a dashboard: the snapshot with the patches applied, and whether it was told it is signed out. */
class LiveView {
  readonly nodes = new Map<string, NodeRow>();
  readonly tunnels = new Map<string, TunnelRow>();
  signedOutAt: number | null = null;
  private readonly ac = new AbortController();
  private waiters: (() => void)[] = [];

  static async open(url: string, cookie: string): Promise<LiveView> {
    const v = new LiveView();
    const res = await fetch(`${url}/dashboard/api/events`, { headers: { cookie }, signal: v.ac.signal });
    assert.equal(res.status, 200);
    void v.read(res.body!.getReader());
    return v;
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          this.event(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch {
      // aborted at the end of the test
    }
  }

  private event(block: string): void {
    const name = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (name === 'signedout') this.signedOutAt = Date.now();
    if (name === 'snapshot' && data) {
      const s = JSON.parse(data) as Snapshot;
      for (const n of s.nodes) this.nodes.set(n.id, n);
      for (const t of s.tunnels) this.tunnels.set(t.id, t);
    }
    if (name === 'patch' && data) {
      const p = JSON.parse(data) as Patch;
      for (const n of p.upsert.nodes ?? []) this.nodes.set(n.id, n);
      for (const t of p.upsert.tunnels ?? []) this.tunnels.set(t.id, t);
      for (const id of p.remove.nodes ?? []) this.nodes.delete(id);
      for (const id of p.remove.tunnels ?? []) this.tunnels.delete(id);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `ok` holds for what the stream said so far. */
  async until(ok: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}: nodes ${JSON.stringify([...this.nodes.values()])} tunnels ${JSON.stringify([...this.tunnels.values()])}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ac.abort();
  }
}

async function session(url: string, cookie: string): Promise<{ signedIn: boolean; csrf?: string; name?: string }> {
  return (await (await fetch(`${url}/dashboard/api/session`, { headers: { cookie } })).json()) as { signedIn: boolean; csrf?: string; name?: string };
}

test('two servers on PostgreSQL: a session from one works on the other, both show both servers\' nodes and paths, a revoked admin token ends it on both within 2 s', async (t) => {
  if (missing) return skipOrFail(t, missing);
  const database = await pg!.createDatabase();
  const agentToken = await cliToken(['--database', database, '--agent', 'ws1']);
  const clientToken = await cliToken(['--database', database, '--client', 'laptop', '--allow', 'ws1']);
  const adminToken = await cliToken(['--database', database, '--admin', 'ops']);
  const servers: ServerProcess[] = [];
  const views: LiveView[] = [];
  const peers: RawPeer[] = [];
  try {
    servers.push(await startServerProcess(['--database', database]), await startServerProcess(['--database', database]));
    const [one, two] = servers as [ServerProcess, ServerProcess];
    const ws = (s: ServerProcess): string => `${s.url.replace('http', 'ws')}${PROTOCOL_PATH}`;

    // The agent on server one, the client on server two, a tunnel, and the client's relayed path.
    const agent = await RawPeer.connect(ws(one), agentToken, 'agent');
    peers.push(agent);
    const client = await RawPeer.connect(ws(two), clientToken, 'client');
    peers.push(client);
    const agentKey = randomKey();
    const clientKey = randomKey();
    agent.send({ type: 'node', node: sampleNode(agentKey, ['192.0.2.1:1000']) });
    client.send({ type: 'node', node: sampleNode(clientKey, ['192.0.2.2:2000']) });
    client.send({ type: 'tunnel', agent: 'ws1' });
    await client.waitFor((m) => m.type === 'peers' && m.updates.some((u) => u.kind === 'node' && u.node.key === agentKey), 10_000);
    client.send({ type: 'path', peer: agentKey, path: { kind: 'relay' }, rttMs: 12.5, reason: 'UDP is blocked on this network' });

    // Sign in on server one; the cookie works on server two, with the same CSRF token.
    const res = await fetch(`${one.url}/dashboard/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: adminToken }).toString(),
    });
    assert.equal(res.status, 200);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const { csrf } = (await res.json()) as { csrf: string };
    const there = await session(two.url, cookie);
    assert.deepEqual([there.signedIn, there.name, there.csrf], [true, 'ops', csrf]);

    // Each server's live view: both nodes, each marked with the server holding it, and the tunnel
    // with the client's report (made on server two) on server one too.
    for (const [i, s] of servers.entries()) {
      const v = await LiveView.open(s.url, cookie);
      views.push(v);
      const node = (key: string) => v.nodes.get(key);
      await v.until(
        () =>
          node(agentKey)?.replica?.url === one.url &&
          node(clientKey)?.replica?.url === two.url &&
          [...v.tunnels.values()].some((tn) => tn.agent === 'ws1' && tn.client === 'laptop' && tn.path === 'relay' && tn.rttMs === 12.5 && tn.reason === 'UDP is blocked on this network'),
        10_000,
        `server ${i + 1}'s view of both nodes and the tunnel`,
      );
      assert.equal(node(agentKey)!.replica!.here, i === 0, 'the agent is on server one');
      assert.equal(node(clientKey)!.replica!.here, i === 1, 'the client is on server two');
    }

    // A state-changing request with the session made on server one, sent to server two.
    const allow = await fetch(`${two.url}/dashboard/api/allow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
      body: JSON.stringify({ client: 'laptop', agents: ['ws1', 'ws2'] }),
    });
    assert.equal(allow.status, 200, await allow.text());

    // Revoke the admin token from the command line: refused on both, streams told, within 2 s.
    const r = await runCli(['token', 'revoke', '--database', database, '--admin', 'ops']);
    assert.equal(r.code, 0, r.stderr);
    const revokedAt = Date.now();
    for (const s of servers) assert.deepEqual(await session(s.url, cookie), { signedIn: false });
    for (const s of servers) assert.equal((await fetch(`${s.url}/dashboard/api/events`, { headers: { cookie } })).status, 401);
    for (const v of views) await v.until(() => v.signedOutAt !== null, 2000 - (Date.now() - revokedAt), 'the live stream to say signed out');
    t.diagnostic(`both live streams ended within ${Math.max(...views.map((v) => v.signedOutAt! - revokedAt))} ms of the revoke command's end`);
  } finally {
    for (const v of views) v.close();
    for (const p of peers) p.ws.close();
    for (const s of servers) await s.stop().catch(() => undefined);
  }
});
