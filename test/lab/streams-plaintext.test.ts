// What the network sees of a forwarded connection: nothing readable. A known marker goes through
// `traverse forward` to an echo server and back while tcpdump captures every packet on the
// client router's WAN interface, for a direct stream and for a relayed one. The marker must not
// be in the capture; a plaintext HTTP request with a control string, sent during the capture,
// must be (so the capture does see payloads), and the capture must hold at least as many bytes
// as went through the stream. Direct, the stream runs on a TCP lane (the capture must show TCP
// to the agent's NAT), or on UDX with --no-tcp-lane.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { COORD_ADDRESS, pairOfNats } from '../../lab/topologies.js';
import { COORD_PORT } from '../../lab/peers.js';
import { collect, exited, forwardPath, sleep, startForward, streamPair, toolRun, toolServer } from '../../lab/streams-lab.js';
import type { TopologySpec } from '../../lab/spec.js';

const skip = await labSkip();

const CASES: readonly { name: string; topology: () => TopologySpec; path: 'direct' | 'relay'; args?: string[]; lane?: boolean }[] = [
  { name: 'direct (easy/easy, TCP lane)', topology: () => pairOfNats('easy', 'easy'), path: 'direct', lane: true },
  { name: 'direct (easy/easy, UDX: --no-tcp-lane)', topology: () => pairOfNats('easy', 'easy'), path: 'direct', args: ['--no-tcp-lane'] },
  { name: 'relayed (client behind UDP-blocked)', topology: () => pairOfNats('udp-blocked', 'easy'), path: 'relay' },
];

describe('no plaintext on the wire', { skip, concurrency: 1 }, () => {
  for (const c of CASES) {
    test(`a marker through a ${c.name} stream never appears in a capture of the client's WAN`, async (t) => {
      const lab = await createLab(c.topology());
      try {
        const pair = await streamPair(lab);
        await toolServer(lab, 'agent', ['echo', '9000']);
        const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { args: c.args ?? [] });
        await forwardPath(fwd, c.path, 10_000);

        const pcap = join(mkdtempSync(join(tmpdir(), 'traverse-lab-pcap-')), 'wan.pcap');
        const rclient = lab.router('rclient');
        const dump = lab.spawn('rclient', 'tcpdump', ['-i', rclient.ifName, '-s', '0', '-U', '--immediate-mode', '-B', '131072', '-n', '-w', pcap]);
        const dl = collect(dump);
        for (let i = 0; !/listening on/.test(dl.err); i++) {
          if (i > 100 || dump.exitCode !== null) throw new Error(`tcpdump did not start: ${dl.err}`);
          await sleep(50);
        }

        const marker = `TRAVERSE-PLAINTEXT-MARKER-${randomBytes(6).toString('hex')}`;
        const control = `TRAVERSE-CONTROL-${randomBytes(6).toString('hex')}`;
        const r = await toolRun<{ sent: number; received: number; ok: boolean; how: string }>(lab, 'client', ['roundtrip', '127.0.0.1', '19000', marker, '20000'], 30_000);
        const cr = await lab.exec('client', 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://${COORD_ADDRESS}:${COORD_PORT}/${control}`], { timeoutMs: 10_000 });
        t.diagnostic(`control request: HTTP ${cr.stdout} ${cr.stderr}`);
        await sleep(500);
        dump.kill('SIGINT');
        await exited(dump);

        const captured = readFileSync(pcap);
        const hasMarker = captured.includes(marker) || captured.includes(marker.slice(0, 16) + marker.slice(-12));
        t.diagnostic(
          `path ${c.path}: ${r.sent} bytes of marker sent and ${r.received} echoed; capture ${captured.length} bytes; ` +
            `marker found: ${captured.includes(marker)}; control found: ${captured.includes(control)}; tcpdump: ${dl.err.replace(/\s+/g, ' ').trim()}`,
        );
        assert.equal(r.ok, true, `the echo came back intact: ${JSON.stringify(r)}`);
        assert.ok(captured.includes(control), 'the capture sees plaintext payloads (control string found)');
        assert.ok(captured.length > 2 * r.sent, `the capture holds the stream's traffic (${captured.length} bytes for ${2 * r.sent} through the stream)`);
        assert.equal(hasMarker, false, 'the marker is not in the capture');
        assert.ok(!captured.includes('TRAVERSE-PLAINTEXT-MARKER'), 'not even its prefix');
        if (c.path === 'direct') {
          // Which carrier the bytes took: TCP (a lane) or UDP (UDX) to the agent's NAT.
          const count = async (proto: string): Promise<number> => {
            const d = await lab.exec('rclient', 'tcpdump', ['-r', pcap, '-n', `${proto} and host ${lab.router('ragent').address}`], { timeoutMs: 10_000 });
            return d.stdout.split('\n').filter((l) => l.trim()).length;
          };
          const [tcp, udp] = [await count('tcp'), await count('udp')];
          t.diagnostic(`packets to the agent's NAT: ${tcp} TCP, ${udp} UDP`);
          if (c.lane) assert.ok(tcp > 10, `the stream ran on a TCP lane (${tcp} TCP packets)`);
          else assert.equal(tcp, 0, 'no lane with --no-tcp-lane');
        }
      } finally {
        await lab.teardown();
      }
    });
  }
});
