// --ca FILE: the private CA is added to Node's store (never replaces it), bad files are refused
// with the reason; the cleartext warning names only plain URLs to other hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { loadTrust, TrustError } from '../../src/net/tls-trust.js';
import { cleartextWarning, parseServerUrl } from '../../src/node/server-url.js';
import { hasOpenssl, makeTestCa } from '../helpers/test-ca.js';

test('loadTrust adds the file to the store and refuses what is not a CA file', (t) => {
  assert.equal(loadTrust(undefined).ca, undefined, 'no --ca: Node default');
  const dir = mkdtempSync(join(tmpdir(), 'traverse-trust-'));
  assert.throws(() => loadTrust(join(dir, 'missing.pem')), (e: Error) => e instanceof TrustError && /--ca .*missing\.pem: no such file/.test(e.message));
  writeFileSync(join(dir, 'junk.pem'), 'hello\n');
  assert.throws(() => loadTrust(join(dir, 'junk.pem')), /no PEM certificate/);
  writeFileSync(join(dir, 'bad.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  assert.throws(() => loadTrust(join(dir, 'bad.pem')), /certificate 1 does not parse/);
  if (!hasOpenssl()) return t.skip('openssl is not installed');
  const ca = makeTestCa();
  const trust = loadTrust(ca.caFile);
  assert.equal(trust.ca!.length, rootCertificates.length + 1);
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
