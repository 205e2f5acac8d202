// The pure pieces of TLS serving: the ClientHello peek (on real hellos that Node's TLS client
// sends, on truncations and on garbage), the renewal plan, the X-Forwarded-For rule, the
// per-address cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { MAX_HELLO_BYTES, peekClientHello } from '../../src/server/client-hello.js';
import { FIRST_RETRY_MS, MAX_RETRY_MS, nextAttempt, renewalDue } from '../../src/server/renewal.js';
import { isTrustedProxy, lastForwardedFor, PerAddressCap } from '../../src/server/client-address.js';

/** The first bytes a real Node TLS client sends for these options. */
async function realHello(servername: string | undefined, alpn: string[] | undefined): Promise<Buffer> {
  const server = createServer();
  const got = new Promise<Buffer>((resolve) =>
    server.on('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf);
          s.destroy();
        }
      });
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...(servername ? { servername } : {}), ...(alpn ? { ALPNProtocols: alpn } : {}) });
  client.on('error', () => undefined);
  try {
    return await got;
  } finally {
    client.destroy();
    server.close();
  }
}

test('the peek reads SNI and ALPN from a real ClientHello', async () => {
  const hello = await realHello('coord.example.test', ['acme-tls/1']);
  assert.deepEqual(peekClientHello(hello), { kind: 'hello', serverName: 'coord.example.test', alpn: ['acme-tls/1'] });
  const plain = await realHello('coord.example.test', undefined);
  assert.deepEqual(peekClientHello(plain), { kind: 'hello', serverName: 'coord.example.test', alpn: [] });
  const both = await realHello(undefined, ['h2', 'http/1.1']);
  assert.deepEqual(peekClientHello(both), { kind: 'hello', serverName: null, alpn: ['h2', 'http/1.1'] });
  // Every prefix of the record asks for more; nothing is guessed from half a hello.
  for (let n = 0; n < hello.length; n++) assert.equal(peekClientHello(hello.subarray(0, n)).kind, 'more', `prefix ${n}`);
});

test('the peek passes on what is not a one-record ClientHello, and never throws', () => {
  assert.equal(peekClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'other');
  // A record header that announces a handshake of another type (2: ServerHello).
  assert.equal(peekClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])).kind, 'other');
  // A ClientHello whose lengths run past the record.
  assert.equal(peekClientHello(Buffer.from([22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3])).kind, 'other');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const withHeader = Buffer.concat([Buffer.from([22, 3, 1, bytes.length >> 8, bytes.length & 0xff]), bytes]);
      for (const b of [Buffer.from(bytes), withHeader]) {
        const r = peekClientHello(b);
        assert.ok(['more', 'other', 'hello'].includes(r.kind));
      }
    }),
  );
  assert.ok(MAX_HELLO_BYTES >= 16_384);
});

test('renewal: due at two thirds of the lifetime, retries back off and stop short of expiry', () => {
  const day = 86_400_000;
  const cert = { notBefore: 0, notAfter: 90 * day };
  assert.equal(renewalDue(cert), 60 * day);
  assert.equal(nextAttempt(null, 5, 0), 5, 'no certificate: now');
  assert.equal(nextAttempt(cert, 10 * day, 0), 60 * day, 'a fresh certificate waits until due');
  assert.equal(nextAttempt(cert, 70 * day, 0), 70 * day, 'an overdue one: now');
  assert.equal(nextAttempt(cert, 61 * day, 1), 61 * day + FIRST_RETRY_MS);
  assert.equal(nextAttempt(cert, 61 * day, 2), 61 * day + 2 * FIRST_RETRY_MS);
  assert.equal(nextAttempt(cert, 61 * day, 30), 61 * day + MAX_RETRY_MS, 'the backoff is capped');
  // Close to expiry the retry comes no later than the last tenth of the lifetime.
  const late = 81 * day - 3600_000;
  assert.ok(nextAttempt(cert, late, 30) <= 81 * day);
  // A short-lived certificate (pebble in the tests: seconds) renews within its life.
  const short = { notBefore: 1000, notAfter: 10_000 };
  assert.equal(nextAttempt(short, 2000, 0), 7000);
  assert.equal(nextAttempt(null, 2000, 3), 2000 + 4 * FIRST_RETRY_MS, 'failed first issuance: backs off too');
});

test('X-Forwarded-For: the right-most entry is the one the proxy added', () => {
  assert.equal(lastForwardedFor(undefined), null);
  assert.equal(lastForwardedFor('203.0.113.7'), '203.0.113.7');
  // The client may send its own header; the trusted proxy appends the real address.
  assert.equal(lastForwardedFor('6.6.6.6, 203.0.113.7'), '203.0.113.7');
  assert.equal(lastForwardedFor(['6.6.6.6', '203.0.113.7']), '203.0.113.7');
  assert.equal(lastForwardedFor('2001:db8::1'), '2001:db8::1');
  assert.equal(lastForwardedFor('[2001:db8::1]'), '2001:db8::1');
  assert.equal(lastForwardedFor('203.0.113.7, unknown'), null, 'not an address: ignored');
  assert.equal(lastForwardedFor('203.0.113.7:4444'), null);
});

test('trusted proxies: loopback, or exactly the addresses given', () => {
  assert.equal(isTrustedProxy([], '127.0.0.1'), false, 'off by default');
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isTrustedProxy(['loopback'], a), a);
  for (const a of ['10.0.0.5', '::ffff:10.0.0.5', '128.0.0.1', undefined]) assert.equal(isTrustedProxy(['loopback'], a), false, String(a));
  assert.ok(isTrustedProxy(['10.0.0.5'], '::ffff:10.0.0.5'));
  assert.equal(isTrustedProxy(['10.0.0.5'], '10.0.0.6'), false);
  assert.equal(isTrustedProxy(['10.0.0.5'], '127.0.0.1'), false, 'naming a proxy does not also trust loopback');
});

test('the per-address cap counts and releases', () => {
  const cap = new PerAddressCap(2);
  assert.ok(cap.take('a') && cap.take('a'));
  assert.equal(cap.take('a'), false);
  assert.ok(cap.take('b'));
  cap.release('a');
  assert.ok(cap.take('a'));
  const none = new PerAddressCap(0);
  for (let i = 0; i < 1000; i++) assert.ok(none.take('x'));
});
