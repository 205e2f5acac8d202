// --ca FILE: the private CA is added to Node's store (never replaces it), bad files are refused
// with the reason; the cleartext warning names only plain URLs to other hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DEFAULT_TRUST, loadTrust, tlsClientOptions, systemCaCertificates, TrustError } from '../../src/net/tls-trust.js';
import { cleartextWarning, parseServerUrl } from '../../src/node/server-url.js';
import { hasOpenssl, makeTestCa } from '../helpers/test-ca.js';

test('loadTrust adds the file to the store and refuses what is not a CA file', (t) => {
  const base = new Set([...rootCertificates, ...systemCaCertificates()]).size;
  assert.equal(loadTrust(undefined), DEFAULT_TRUST, 'no --ca: the default trust');
  const dir = mkdtempSync(join(tmpdir(), 'traverse-trust-'));
  assert.throws(() => loadTrust(join(dir, 'missing.pem')), (e: Error) => e instanceof TrustError && /--ca .*missing\.pem: no such file/.test(e.message));
  writeFileSync(join(dir, 'junk.pem'), 'hello\n');
  assert.throws(() => loadTrust(join(dir, 'junk.pem')), /no PEM certificate/);
  writeFileSync(join(dir, 'bad.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  assert.throws(() => loadTrust(join(dir, 'bad.pem')), /certificate 1 does not parse/);
  if (!hasOpenssl()) return t.skip('openssl is not installed');
  const ca = makeTestCa();
  const trust = loadTrust(ca.caFile);
  assert.equal(trust.ca!.length, base + 1);
  assert.ok(trust.ca!.at(-1)!.includes(readFileSync(ca.caFile, 'utf8').trim().split('\n')[1]!));
});

test('cleartext warning: plain URLs to other hosts only', () => {
  const w = (u: string): string | null => cleartextWarning(parseServerUrl(u));
  assert.match(w('http://coord.example:8080') ?? '', /not encrypted: the token and the endpoints travel in clear text/);
  assert.match(w('ws://192.0.2.1:8080') ?? '', /clear text/);
  assert.match(w('coord.example:8080') ?? '', /clear text/, 'a bare host:port means http');
  for (const quiet of ['https://coord.example', 'wss://coord.example', 'http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'http://a.localhost']) {
    assert.equal(w(quiet), null, quiet);
  }
});

test('the system CA bundle is trusted without --ca (SSL_CERT_FILE names it)', async (t) => {
  if (!hasOpenssl()) return t.skip('openssl is not installed');
  const ca = makeTestCa('Traverse Test System CA');
  const { certFile, keyFile } = ca.issue('server', ['localhost', '127.0.0.1']);
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const get = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, servername: 'localhost', path: '/', agent: false, ...tlsClientOptions(DEFAULT_TRUST) }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', reject);
      req.end();
    });
  const saved = process.env.SSL_CERT_FILE;
  t.after(() => (saved === undefined ? delete process.env.SSL_CERT_FILE : (process.env.SSL_CERT_FILE = saved)));
  // A bundle without the test CA: refused, as an unknown CA must be.
  process.env.SSL_CERT_FILE = join(ca.dir, 'missing-bundle.pem');
  writeFileSync(process.env.SSL_CERT_FILE, rootCertificates[0]! + '\n');
  await assert.rejects(get(), /self.signed|unable to (get|verify)/i);
  // The same CA installed in the system bundle: trusted, with no --ca.
  process.env.SSL_CERT_FILE = join(ca.dir, 'bundle.pem');
  writeFileSync(process.env.SSL_CERT_FILE, rootCertificates[0]! + '\n' + readFileSync(ca.caFile, 'utf8'));
  assert.equal(await get(), '200');
});
