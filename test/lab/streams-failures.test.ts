// Bad things under an open forwarded connection: the agent restarts, the target dies, the target
// is not allowed. In each case the forward's local socket must be closed within a bound, never
// left hanging, and the forward itself must keep serving.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { startAgent } from '../../lab/peers.js';
import { collect, exited, forwardPath, lineMatching, startForward, streamPair, TOOL, toolRun, toolServer, within } from '../../lab/streams-lab.js';
import type { Lab } from '../../lab/lab.js';
import { IDLE_TIMEOUT_MS } from '../../src/tunnel/streams.js';

const skip = await labSkip();
/** How long a local socket may take to close after its far side went away. */
const CLOSE_BOUND_MS = 10_000;
/** After the agent dies: the streams' idle timeout (IDLE_TIMEOUT_MS) plus slack. */
const AGENT_CLOSE_BOUND_MS = IDLE_TIMEOUT_MS + 3000;

/** `hold` in the client: one echo round trip through the forward, then waits for the close. */
async function hold(lab: Lab, port: number): Promise<{ lines: ReturnType<typeof collect>; closed: Promise<{ t: number; how: string }> }> {
  const p = lab.spawn('client', process.execPath, [TOOL, 'hold', '127.0.0.1', String(port)]);
  const lines = collect(p);
  await lineMatching(lines, /^open$/, 10_000, 0, 'hold open');
  const closed = lineMatching(lines, /^\{/, 60_000, 0, 'hold closed').then((l) => ({ t: l.t, how: (JSON.parse(l.line) as { how: string }).how }));
  closed.catch(() => undefined);
  return { lines, closed };
}

describe('streams when things go wrong', { skip, concurrency: 2 }, () => {
  test('the agent restarts: an open forwarded connection is closed within a bound; new ones reach the new agent', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const keyFile = join(mkdtempSync(join(tmpdir(), 'traverse-lab-agentkey-')), 'agent.key');
      const pair = await streamPair(lab, ['--key-file', keyFile]);
      await toolServer(lab, 'agent', ['echo', '9000']);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { env: { TRAVERSE_LOG_LEVEL: 'info' } });
      await forwardPath(fwd, 'direct', 10_000);
      const h = await hold(lab, 19000);

      const killed = performance.now();
      pair.agent.kill('SIGKILL');
      await exited(pair.agent);
      // A restart: the same agent (same key) comes back at once, as a supervisor would restart it.
      await startAgent(lab, 'agent', pair.coord.url, pair.agentToken, ['--key-file', keyFile]);
      const restarted = performance.now();
      const c = await within(h.closed, AGENT_CLOSE_BOUND_MS + 5000);
      if (c === 'timeout') assert.fail(`the local socket was still open ${AGENT_CLOSE_BOUND_MS + 5000} ms after the agent died; forward:\n${fwd.lines.out.map((l) => l.line).join('\n')}\n${fwd.lines.err}`);
      const closeMs = c.t - killed;

      let again: { ok: boolean; how: string } | null = null;
      for (let i = 0; i < 20 && !again?.ok; i++) {
        again = await toolRun<{ ok: boolean; how: string }>(lab, 'client', ['roundtrip', '127.0.0.1', '19000', 'again', '10'], 15_000).catch(() => null);
      }
      const errLines = fwd.lines.err.trim().split('\n').filter((l) => !l.startsWith('{'));
      t.diagnostic(
        `agent back ${Math.round(restarted - killed)} ms after SIGKILL; the local socket closed ${Math.round(closeMs)} ms after SIGKILL (${c.how}); ` +
          `a new connection worked ${Math.round(performance.now() - killed)} ms after SIGKILL; forward: ${fwd.lines.out.map((l) => l.line).join(' | ')} ${errLines.join(' | ')}`,
      );
      assert.ok(closeMs < AGENT_CLOSE_BOUND_MS, `closed within ${AGENT_CLOSE_BOUND_MS} ms`);
      assert.equal(again?.ok, true, `a connection through the same forward reached the restarted agent: ${JSON.stringify(again)}\n${fwd.lines.err}`);
      assert.equal(fwd.process.exitCode, null, 'forward is still running');
    } finally {
      await lab.teardown();
    }
  });

  test('the agent dies and stays dead under an idle relayed connection: the local socket is closed by the idle timeout', async (t) => {
    const lab = await createLab(pairOfNats('udp-blocked', 'easy'));
    try {
      const pair = await streamPair(lab);
      await toolServer(lab, 'agent', ['echo', '9000']);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000']);
      const h = await hold(lab, 19000);
      const killed = performance.now();
      pair.agent.kill('SIGKILL');
      const c = await within(h.closed, AGENT_CLOSE_BOUND_MS + 5000);
      if (c === 'timeout') assert.fail(`the local socket was still open ${AGENT_CLOSE_BOUND_MS + 5000} ms after the agent died:\n${fwd.lines.err}`);
      t.diagnostic(`local socket closed ${Math.round(c.t - killed)} ms after SIGKILL of the agent (${c.how}); forward stderr: ${fwd.lines.err.trim()}`);
      assert.ok(c.t - killed < AGENT_CLOSE_BOUND_MS);
    } finally {
      await lab.teardown();
    }
  });

  test('the target dies: the local socket is closed', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab);
      const echo = await toolServer(lab, 'agent', ['echo', '9000']);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000']);
      const h = await hold(lab, 19000);
      const killed = performance.now();
      echo.process.kill('SIGKILL');
      const c = await within(h.closed, CLOSE_BOUND_MS);
      if (c === 'timeout') assert.fail(`the local socket was still open ${CLOSE_BOUND_MS} ms after the target died`);
      t.diagnostic(`local socket closed ${Math.round(c.t - killed)} ms after the target was killed (${c.how})`);
      // A new connection now finds nothing listening: refused by the agent, closed locally, reason on stderr.
      const r = await toolRun<{ how: string }>(lab, 'client', ['hold', '127.0.0.1', '19000'], 20_000);
      t.diagnostic(`a new connection: ${r.how}; forward stderr: ${fwd.lines.err.trim()}`);
      assert.match(fwd.lines.err, /connection to 127\.0\.0\.1:9000 failed: cannot connect to 127\.0\.0\.1:9000 on the agent: ECONNREFUSED/);
    } finally {
      await lab.teardown();
    }
  });

  test('a target outside --allow-target: refused, the local socket closed, the reason on stderr', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const pair = await streamPair(lab, ['--allow-target', '127.0.0.1:9000']);
      await toolServer(lab, 'agent', ['echo', '9000']);
      await toolServer(lab, 'agent', ['echo', '9001']); // listening, but not allowed
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000', '19001:127.0.0.1:9001']);
      const started = performance.now();
      const refused = await toolRun<{ how: string }>(lab, 'client', ['hold', '127.0.0.1', '19001'], 20_000);
      const refusedMs = performance.now() - started;
      const allowed = await toolRun<{ ok: boolean }>(lab, 'client', ['roundtrip', '127.0.0.1', '19000', 'allowed', '10'], 20_000);
      t.diagnostic(`not allowed: local socket ${refused.how} after ${Math.round(refusedMs)} ms; forward stderr: ${fwd.lines.err.trim()}`);
      assert.ok(refusedMs < CLOSE_BOUND_MS);
      assert.match(fwd.lines.err, /traverse: connection to 127\.0\.0\.1:9001 failed: target 127\.0\.0\.1:9001 is not allowed by the agent \(--allow-target\)/);
      assert.equal(allowed.ok, true, 'the allowed target works through the same forward');
    } finally {
      await lab.teardown();
    }
  });
});
