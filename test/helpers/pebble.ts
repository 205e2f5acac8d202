// Pebble, Let's Encrypt's ACME test server (Debian `pebble`), on loopback for a test: its API
// certificate is made by openssl at test time, its TLS-ALPN-01 validations go to `tlsPort` of
// the name being validated, resolved by the system resolver (/etc/hosts: localhost is 127.0.0.1).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { get } from 'node:https';
import { makeTestCa } from './test-ca.js';

export const PEBBLE = '/usr/bin/pebble';

export function hasPebble(): boolean {
  return existsSync(PEBBLE);
}

export interface Pebble {
  readonly directoryUrl: string;
  /** The CA of pebble's own API certificate: the server's --ca for the directory. */
  readonly apiCaFile: string;
  /** Pebble's root for issued certificates (regenerated every run): the peers' --ca. */
  rootPem(): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startPebble(opts: { tlsPort: number; validitySeconds?: number }): Promise<Pebble> {
  const ca = makeTestCa('Pebble API test CA');
  const api = ca.issue('pebble-api', ['127.0.0.1', 'localhost']);
  const [listen, management, http01] = [await freePort(), await freePort(), await freePort()];
  const config = join(ca.dir, 'pebble-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: api.certFile,
        privateKey: api.keyFile,
        httpPort: http01,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }),
  );
  // No random sleeps, no rejected nonces, no reused authorizations: every order is validated.
  const proc: ChildProcess = spawn(PEBBLE, ['-config', config], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; !log.includes('ACME directory available'); i++) {
    if (i > 100 || proc.exitCode !== null) {
      await stop();
      throw new Error(`pebble did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const apiCa = readFileSync(ca.caFile);
  return {
    directoryUrl: `https://127.0.0.1:${listen}/dir`,
    apiCaFile: ca.caFile,
    rootPem: () =>
      new Promise((resolve, reject) => {
        get(`https://127.0.0.1:${management}/roots/0`, { ca: apiCa }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble /roots/0: HTTP ${res.statusCode}`))));
        }).on('error', reject);
      }),
    log: () => log,
    stop,
  };
}
