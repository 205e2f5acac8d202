// Attacks by a client that is ALLOWED to reach the agent, with real sockets on loopback (a test
// coordination server on 127.0.0.1; nodes offer only loopback candidates and run no STUN). The
// victims are UDP sockets on 127.0.0.2 and 127.0.0.3 that count what reaches them; the agent's
// socket is also watched, so probes to ports no victim listens on are counted too.
//   (a) birthday reflection with fresh keys of one identity;
//   (b) endpoint reflection and scanning: published endpoints and call-me-maybe lists pointing at
//       the victims, rotated;
//   (c) replay of captured sealed packets after the same key reconnected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { NodeKey } from '../../src/identity/node-key.js';
import type { PeerNode } from '../../src/node/peer-node.js';
import { DiscoSealer, looksLikeDisco, type DiscoMessage } from '../../src/disco/index.js';
import { DEFAULT_PROBE_LIMITS as L } from '../../src/magicsock/probe-budget.js';
import { BIRTHDAY_PROBES } from '../../src/magicsock/port-prediction.js';
import { splitEndpoint } from '../../src/net/endpoint.js';
import { startTestServer, type TestServer } from '../server/helpers.js';
import { loopbackNode } from './loopback-node.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const node = loopbackNode;

interface Victim {
  readonly sock: Socket;
  readonly endpoint: string;
  received: number;
}

async function victims(ip: string, n: number): Promise<Victim[]> {
  const out: Victim[] = [];
  for (let i = 0; i < n; i++) {
    const sock = createSocket('udp4');
    sock.bind(0, ip);
    await once(sock, 'listening');
    const v: Victim = { sock, endpoint: `${ip}:${sock.address().port}`, received: 0 };
    sock.on('message', () => v.received++);
    out.push(v);
  }
  return out;
}

/** Records every datagram a node's socket sends (and still sends it). */
function watchSends(n: PeerNode): { host: string; port: number; buf: Buffer }[] {
  const sent: { host: string; port: number; buf: Buffer }[] = [];
  const sock = n.magicsock.socket as { trySend: (b: Uint8Array, port: number, host?: string) => void };
  const real = sock.trySend.bind(sock);
  sock.trySend = (b, port, host) => {
    sent.push({ host: host ?? '', port, buf: Buffer.from(b) });
    real(b, port, host);
  };
  return sent;
}

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

async function setup(): Promise<{ t: TestServer; agent: PeerNode; agentNodeKey: NodeKey; clientToken: string; agentToken: string }> {
  const t = await startTestServer();
  const agentToken = await t.token('agent', 'ws1');
  const clientToken = await t.token('client', 'mallory', { allow: ['ws1'] });
  const agentNodeKey = NodeKey.generate();
  const agent = await node(t, agentToken, 'agent', { key: agentNodeKey });
  return { t, agent, agentNodeKey, clientToken, agentToken };
}

/** Seals a disco message as `n` (its own key) and sends it to the agent through the relay. */
function relayDisco(n: PeerNode, sealer: DiscoSealer, agentKey: string, m: DiscoMessage): void {
  n.coordinator.sendRelay(agentKey, sealer.seal(agentKey, m));
}

test('(a) birthday reflection: fresh keys of one identity get no probe to a victim IP, and one attempt a minute to their own', async () => {
  const { t, agent, clientToken } = await setup();
  const victim = await victims('127.0.0.2', 1);
  const sent = watchSends(agent);
  const nodes: PeerNode[] = [];
  try {
    const ROUNDS = 6;
    for (let i = 0; i < ROUNDS; i++) {
      // Relay only, so the agent's probes are not cut short by a direct path.
      const key = NodeKey.generate();
      const c = await node(t, clientToken, 'client', { key, disableDirect: true });
      nodes.push(c);
      const agentKey = (await c.openTunnel('ws1', 5000)).key;
      await until('agent knows the client', 3000, () => agent.magicsock.hasPeer(key.publicHex));
      const sealer = new DiscoSealer(key);
      relayDisco(c, sealer, agentKey, { type: 'birthday', ip: '127.0.0.2' }); // the victim
      relayDisco(c, sealer, agentKey, { type: 'birthday', ip: '127.0.0.1' }); // its own, vouched IP
    }
    await sleep(2500); // 2000 probes take 2 s
    const toVictim = sent.filter((s) => s.host === '127.0.0.2').length;
    const toVouched = sent.filter((s) => s.host === '127.0.0.1').length;
    console.log(`birthday: ${toVictim} packets to the victim IP (socket got ${victim[0]!.received}), ${toVouched} to the vouched IP over ${ROUNDS} fresh keys`);
    assert.equal(toVictim, 0, 'nothing to an IP the coordinator did not see the client at');
    assert.equal(victim[0]!.received, 0);
    assert.ok(toVouched <= BIRTHDAY_PROBES, `${toVouched} probes to the vouched IP: one attempt per identity a minute`);
    assert.ok(toVouched > 0, 'the first attempt (to the vouched IP) does run');
  } finally {
    for (const n of nodes) n.close();
    agent.close();
    for (const v of victim) v.sock.close();
    await t.close();
  }
});

test('(b) endpoint reflection and scanning: rotated published endpoints and call-me-maybe floods stay within the budget', async () => {
  const { t, agent, clientToken } = await setup();
  const vs = [...(await victims('127.0.0.2', 60)), ...(await victims('127.0.0.3', 60))];
  const sent = watchSends(agent);
  const key = NodeKey.generate();
  const c = await node(t, clientToken, 'client', { key, disableDirect: true });
  try {
    const agentKey = (await c.openTunnel('ws1', 5000)).key;
    await c.netcheckSettled();
    await until('agent knows the client', 3000, () => agent.magicsock.hasPeer(key.publicHex));
    const sealer = new DiscoSealer(key);
    const started = Date.now();
    const ATTACK_MS = 6000;
    let round = 0;
    while (Date.now() - started < ATTACK_MS) {
      // 32 published endpoints at the victims, a different 32 each round.
      const published = Array.from({ length: 32 }, (_, i) => vs[(round * 32 + i) % vs.length]!.endpoint);
      c.coordinator.publishNode({ endpoints: published, preferredRelay: null });
      // And call-me-maybe lists: the published ones (restarting bursts) and others (ignored).
      for (let k = 0; k < 5; k++) {
        const other = Array.from({ length: 32 }, (_, i) => vs[(round * 32 + 60 + i) % vs.length]!.endpoint);
        const list = (k % 2 === 0 ? published : other).map((e) => splitEndpoint(e)!);
        relayDisco(c, sealer, agentKey, { type: 'call-me-maybe', endpoints: list });
        await sleep(50);
      }
      round++;
    }
    await sleep(1000);
    const elapsed = (Date.now() - started) / 1000;
    const toVictims = sent.filter((s) => s.host === '127.0.0.2' || s.host === '127.0.0.3');
    const received = vs.reduce((n, v) => n + v.received, 0);
    const distinct = new Set(toVictims.map((s) => `${s.host}:${s.port}`)).size;
    // The bucket's bound over the attack (+1 for the two clocks' rounding: Date.now here, performance.now there).
    const bound = L.groupPackets.burst + L.groupPackets.perSec * elapsed + 1;
    console.log(
      `endpoints: ${toVictims.length} packets to the victims (sockets got ${received}) at ${distinct} destinations in ${elapsed.toFixed(1)} s, ${round} rotations; bound ${Math.floor(bound)} packets, ${L.groupDestinations} destinations`,
    );
    assert.ok(toVictims.length <= bound, `${toVictims.length} packets > ${bound}`);
    assert.ok(distinct <= L.groupDestinations, `${distinct} destinations`);
    assert.ok(received <= toVictims.length);
    assert.ok(toVictims.length > 0, 'published endpoints are probed (within the budget)');
  } finally {
    c.close();
    agent.close();
    for (const v of vs) v.sock.close();
    await t.close();
  }
});

test('(c) replay: sealed packets captured before the same key reconnects are answered by nobody, agent or client', async () => {
  const { t, agent, agentNodeKey, clientToken, agentToken } = await setup();
  const sockets: Socket[] = [];
  const replayer = async (): Promise<{ sock: Socket; answers: () => number }> => {
    const sock = createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    sockets.push(sock);
    let n = 0;
    sock.on('message', () => n++);
    return { sock, answers: () => n };
  };
  const clientKey = NodeKey.generate();
  const nodes: PeerNode[] = [];
  try {
    // Two clients of the identity go direct; record what each sends to the agent and the agent to them.
    const c1 = await node(t, clientToken, 'client', { key: clientKey });
    const c3Key = NodeKey.generate();
    const c3 = await node(t, clientToken, 'client', { key: c3Key });
    nodes.push(c1, c3);
    const c1Sent = watchSends(c1);
    const agentSent = watchSends(agent);
    const agentKey = (await c1.openTunnel('ws1', 5000)).key;
    await c3.openTunnel('ws1', 5000);
    await until('direct', 5000, () => c1.magicsock.pathOf(agentKey).kind === 'direct' && c3.magicsock.pathOf(agentKey).kind === 'direct');
    await sleep(300);
    const toAgent = c1Sent.filter((s) => s.port === agent.magicsock.port && looksLikeDisco(s.buf)).map((s) => s.buf);
    const toClient = agentSent.filter((s) => s.port === c3.magicsock.port && looksLikeDisco(s.buf)).map((s) => s.buf);
    assert.ok(toAgent.length > 0 && toClient.length > 0);

    // Agent side: the client disconnects cleanly (the agent forgets its key) and the same key
    // comes back, relay only, so that nothing newer of it reaches the agent before the replays.
    c1.close();
    await until('agent forgot the client', 3000, () => !agent.magicsock.hasPeer(clientKey.publicHex));
    const c2 = await node(t, clientToken, 'client', { key: clientKey, disableDirect: true });
    nodes.push(c2);
    await c2.openTunnel('ws1', 5000);
    await until('agent knows the client again', 3000, () => agent.magicsock.hasPeer(clientKey.publicHex));
    const r1 = await replayer();
    const before = agentSent.length;
    for (const b of toAgent) r1.sock.send(b, agent.magicsock.port, '127.0.0.1');
    await sleep(300);
    const toR1 = agentSent.slice(before).filter((s) => s.port === r1.sock.address().port).length;
    console.log(`replay to the agent: ${toAgent.length} captured packets replayed, ${r1.answers()} answers, ${toR1} agent packets to the replayer`);
    assert.equal(r1.answers(), 0, 'the agent answered a replay');
    assert.equal(toR1, 0);
    // The same check sees an answer when there is one: a fresh ping of the key is answered.
    r1.sock.send(new DiscoSealer(clientKey).seal(agentKey, { type: 'ping', txid: new Uint8Array(12).fill(1) }), agent.magicsock.port, '127.0.0.1');
    await until('a fresh ping to the agent is answered', 2000, () => r1.answers() > 0);

    // Client side: the agent restarts with its key, relay only (nothing newer of it reaches c3).
    agent.close();
    await until('client forgot the agent', 3000, () => !c3.magicsock.hasPeer(agentKey));
    const agent2 = await node(t, agentToken, 'agent', { key: agentNodeKey, disableDirect: true });
    nodes.push(agent2);
    await until('client knows the agent again', 5000, () => c3.magicsock.hasPeer(agentKey));
    const r2 = await replayer();
    for (const b of toClient) r2.sock.send(b, c3.magicsock.port, '127.0.0.1');
    await sleep(300);
    console.log(`replay to the client: ${toClient.length} captured packets replayed, ${r2.answers()} answers`);
    assert.equal(r2.answers(), 0, 'the client answered a replay');
    r2.sock.send(new DiscoSealer(agentNodeKey).seal(c3Key.publicHex, { type: 'ping', txid: new Uint8Array(12).fill(2) }), c3.magicsock.port, '127.0.0.1');
    await until('a fresh ping to the client is answered', 2000, () => r2.answers() > 0);
  } finally {
    for (const n of nodes) n.close();
    agent.close();
    for (const s of sockets) s.close();
    await t.close();
  }
});
