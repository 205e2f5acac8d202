// coturn, the independent STUN peer of the tests: `turnserver` STUN-only, either on this
// machine's loopback (interop tests of the STUN client and netcheck) or in RFC 5780 mode on a lab
// STUN host's two addresses (the judge of the NAT lab), and `turnutils_natdiscovery` on a LAN
// host, parsed into RFC 4787 terms. One argument list for both, so they run the same server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';
import type { MappingBehaviour } from './nat.js';
import { waitForUdpListeners } from './wait-listening.js';

export const STUN_PORT = 3478;

/** Null when coturn is installed; otherwise the reason a test should skip (or fail in CI). */
export function coturnMissing(): string | null {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8' });
  if (r.error) return 'coturn is not installed (apt-get install coturn)';
  return null;
}

/**
 * turnserver's arguments: STUN only, no config file, no CLI, TLS or DTLS, a pidfile of its own
 * (several may run at once), logging to stdout.
 */
function coturnArgs(listen: readonly string[], port: number, pidfile: string, extra: readonly string[] = []): string[] {
  return [
    '-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls',
    ...listen.flatMap((a) => ['-L', a]), '--listening-port', String(port),
    '--log-file', 'stdout', '--simple-log', '--pidfile', pidfile,
    ...extra,
  ];
}

/**
 * Starts coturn STUN-only on the lab host's first two addresses (primary and RFC 5780 alternate;
 * coturn takes port+1 as the alternate port). Resolves once all four sockets are bound.
 */
export async function startCoturn(lab: Lab, host: string): Promise<LabProcess> {
  const n = lab.node(host);
  const [a, b] = n.addresses;
  if (a === undefined || b === undefined) throw new Error(`STUN host "${host}" needs two addresses for RFC 5780`);
  const child = lab.spawn(host, 'turnserver', coturnArgs([a, b], STUN_PORT, `/tmp/${n.ns}-turnserver.pid`));
  // coturn logs nothing when its listeners open: wait for the sockets it must have bound,
  // primary and alternate address, each on port and port+1.
  const want = [a, b].flatMap((ip) => [`${ip}:${STUN_PORT}`, `${ip}:${STUN_PORT + 1}`]);
  await waitForUdpListeners(lab, host, child, want, 'turnserver', 5000);
  return child;
}

export interface LocalCoturn {
  readonly port: number;
  readonly address: string;
  stop(): Promise<void>;
}

async function freeUdpPort(address: string): Promise<number> {
  const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts coturn on one address of this machine (loopback); resolves once it answers a Binding request. */
export async function startLocalCoturn(address = '127.0.0.1', extraArgs: string[] = []): Promise<LocalCoturn> {
  const port = await freeUdpPort(address);
  const dir = mkdtempSync(join(tmpdir(), 'traverse-coturn-'));
  const child: ChildProcess = spawn('turnserver', coturnArgs([address], port, join(dir, 'pid'), ['--userdb', join(dir, 'turndb'), ...extraArgs]), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const probe = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const req = Buffer.from('000100002112a442' + '0102030405060708090a0b0c', 'hex');
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`coturn did not answer within 5 s:\n${output}`)), 5000);
      const tick = setInterval(() => probe.send(req, port, address), 50);
      probe.on('message', () => {
        clearTimeout(deadline);
        clearInterval(tick);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(deadline);
        clearInterval(tick);
        reject(new Error(`coturn exited with ${code}:\n${output}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    probe.close();
  }
  return {
    port,
    address,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface NatDiscovery {
  /** Undefined when coturn did not get an answer (UDP blocked, or the test timed out). */
  readonly mapping: MappingBehaviour | undefined;
  readonly filtering: MappingBehaviour | undefined;
  /** The server-reflexive addresses seen, in order ("203.0.113.2:40000"). */
  readonly reflexive: readonly string[];
  /** The local socket addresses, paired with `reflexive` ("0.0.0.0:40000"). */
  readonly local: readonly string[];
  /** Only with `hairpin: true`: whether a hairpinned request came back. */
  readonly hairpinning: boolean | undefined;
  readonly output: string;
}

const BEHAVIOUR: Readonly<Record<string, MappingBehaviour>> = {
  'Endpoint Independent': 'endpoint-independent',
  'Address Dependent': 'address-dependent',
  'Address and Port Dependent': 'address-and-port-dependent',
};

function behaviour(output: string, what: 'Mapping' | 'Filtering'): MappingBehaviour | undefined {
  const m = new RegExp(`NAT with (.+?) ${what}!`).exec(output);
  return m?.[1] === undefined ? undefined : BEHAVIOUR[m[1]];
}

/** Runs coturn's NAT behaviour discovery from `host` against `server` (RFC 5780 mode). */
export async function natDiscovery(
  lab: Lab,
  host: string,
  server: string,
  tests: { mapping?: boolean; filtering?: boolean; hairpin?: boolean } = { mapping: true, filtering: true },
): Promise<NatDiscovery> {
  const flags = [...(tests.mapping ? ['-m'] : []), ...(tests.filtering ? ['-f'] : []), ...(tests.hairpin ? ['-H'] : [])];
  const r = await lab.exec(host, 'turnutils_natdiscovery', [...flags, '-p', String(STUN_PORT), server], { timeoutMs: 30_000 });
  const output = r.stdout + r.stderr;
  return {
    mapping: behaviour(output, 'Mapping'),
    filtering: behaviour(output, 'Filtering'),
    reflexive: [...output.matchAll(/UDP reflexive addr: (\S+)/g)].map((m) => m[1] ?? ''),
    local: [...output.matchAll(/Local addr: : (\S+)/g)].map((m) => m[1] ?? ''),
    hairpinning: tests.hairpin ? /successful hairpinning/.test(output) : undefined,
    output,
  };
}
