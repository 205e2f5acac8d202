// Streams through real NATs: a real sshd reached with `ssh -o ProxyCommand="traverse proxy ..."`,
// and an HTTP server reached through `traverse forward`, each across easy/easy (the path ends
// direct) and a client whose network blocks UDP (everything relayed). Each case in its own lab.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { peerEnv } from '../../lab/peers.js';
import { forwardPath, sshFixture, sshThrough, startForward, startSshd, streamPair, toolServer } from '../../lab/streams-lab.js';
import type { TopologySpec } from '../../lab/spec.js';
import { BIN } from '../helpers/cli.js';

const skip = await labSkip();

const CASES: readonly { name: string; topology: () => TopologySpec; path: 'direct' | 'relay' }[] = [
  { name: 'easy/easy (ends direct)', topology: () => pairOfNats('easy', 'easy'), path: 'direct' },
  { name: 'client behind UDP-blocked (relay)', topology: () => pairOfNats('udp-blocked', 'easy'), path: 'relay' },
];

const SSH_PORT = 2222;
const HTTP_PORT = 8000;

describe('streams in the lab', { skip, concurrency: 2 }, () => {
  for (const c of CASES) {
    test(`ssh through traverse proxy, ${c.name}`, async (t) => {
      const lab = await createLab(c.topology());
      try {
        const pair = await streamPair(lab);
        const ssh = await sshFixture(SSH_PORT);
        await startSshd(lab, 'agent', ssh.config, SSH_PORT);
        const state = mkdtempSync(join(tmpdir(), 'traverse-lab-proxy-'));
        const proxy = `${process.execPath} ${BIN} proxy dev-box 127.0.0.1:${SSH_PORT} --server ${pair.coord.url} --token ${pair.clientToken}`;
        const started = performance.now();
        // `sleep 4` keeps the stream open past the first punching burst, so the path can upgrade under it.
        const r = await sshThrough(lab, proxy, ssh.key, 'echo ok; uname -n; sleep 4; echo done', {
          timeoutMs: 40_000,
          env: { ...peerEnv(state), TRAVERSE_LOG_LEVEL: 'info' },
        });
        const ms = performance.now() - started;
        assert.equal(r.code, 0, `ssh failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
        assert.deepEqual(r.stdout.trim().split('\n'), ['ok', hostname(), 'done']);
        // The proxy's pino lines (info) on ssh's stderr say which path it ended on.
        const paths = [...r.stderr.matchAll(/"path":\{"kind":"(direct|relay)"/g)].map((m) => m[1]);
        const last = paths.at(-1) ?? 'relay';
        t.diagnostic(`ssh ran in ${Math.round(ms)} ms; proxy path changes: ${paths.join(' -> ') || 'none (relay throughout)'}`);
        assert.equal(last, c.path);
      } finally {
        await lab.teardown();
      }
    });

    test(`HTTP through traverse forward, ${c.name}`, async (t) => {
      const lab = await createLab(c.topology());
      try {
        const pair = await streamPair(lab);
        await toolServer(lab, 'agent', ['http', String(HTTP_PORT), 'hello from the workspace']);
        const fwd = await startForward(lab, pair, [`18080:127.0.0.1:${HTTP_PORT}`]);
        const get = async (): Promise<string> => {
          const r = await lab.exec('client', 'curl', ['-sS', '--max-time', '10', `http://127.0.0.1:18080/`], { timeoutMs: 15_000 });
          assert.equal(r.code, 0, `curl failed: ${r.stderr}\nforward stderr:\n${fwd.lines.err}`);
          return r.stdout;
        };
        const t0 = performance.now();
        assert.equal(await get(), 'hello from the workspace');
        const first = performance.now() - t0;
        if (c.path === 'direct') await forwardPath(fwd, 'direct', 10_000);
        // Again, now on the final path (direct, or still the relay).
        assert.equal(await get(), 'hello from the workspace');
        t.diagnostic(`first GET ${Math.round(first)} ms; forward printed: ${fwd.lines.out.map((l) => l.line).join(' | ')}`);
        if (c.path === 'relay') assert.ok(!fwd.lines.out.some((l) => /direct/.test(l.line)), 'never direct');
      } finally {
        await lab.teardown();
      }
    });
  }
});
