// Starts coturn's STUN server on loopback for interop tests, and says why when it can't.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Coturn {
  readonly port: number;
  readonly address: string;
  stop(): Promise<void>;
}

/** Null when coturn is installed; otherwise the reason a test should skip (or fail in CI). */
export function coturnMissing(): string | null {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8' });
  if (r.error) return 'coturn is not installed (apt-get install coturn)';
  return null;
}

export { skipOrFail } from './required.js';

async function freeUdpPort(address: string): Promise<number> {
  const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startCoturn(address = '127.0.0.1', extraArgs: string[] = []): Promise<Coturn> {
  const port = await freeUdpPort(address);
  const dir = mkdtempSync(join(tmpdir(), 'traverse-coturn-'));
  const child: ChildProcess = spawn(
    'turnserver',
    [
      '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '-c', '/dev/null',
      '--userdb', join(dir, 'turndb'), '--pidfile', join(dir, 'pid'),
      '-L', address, '-p', String(port), '--log-file', 'stdout', '--simple-log',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  // Ready when it answers a Binding request.
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
