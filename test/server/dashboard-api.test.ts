// The API behind the dashboard's page, over real HTTP on loopback: the page's headers (CSP,
// caching), sign-in and its refusals, the session cookie, CSRF on every state-changing request,
// the rate limit on sign-in, and what token creation, revocation and allow lists change.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers.js';
import { CONTENT_SECURITY_POLICY } from '../../src/server/dashboard/http.js';
import { sessionCookie } from '../../src/server/dashboard/sessions.js';
import { CertificateHolder, loadCertificateFiles } from '../../src/server/tls.js';
import { hasOpenssl, makeTestCa } from '../helpers/test-ca.js';
import { skipOrFail } from '../helpers/required.js';

interface Signed {
  readonly cookie: string;
  readonly csrf: string;
}

function base(t: TestServer): string {
  return `http://127.0.0.1:${t.server.port}`;
}

async function signIn(t: TestServer, token: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base(t)}/dashboard/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
}

async function signedIn(t: TestServer, token: string): Promise<Signed> {
  const res = await signIn(t, token);
  assert.equal(res.status, 200);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const body = (await res.json()) as { csrf: string };
  return { cookie, csrf: body.csrf };
}

function post(t: TestServer, path: string, s: Signed, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base(t)}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrf, ...headers },
    body: JSON.stringify(body),
  });
}

describe('dashboard API', () => {
  let t: TestServer;
  let admin: string;
  let client: string;
  before(async () => {
    t = await startTestServer({ authThrottle: { burst: 6, failuresPerSec: 0.01 } });
    admin = await t.token('admin', 'ops');
    client = await t.token('client', 'laptop', { allow: ['dev-box'] });
  });
  after(() => t.close());

  test('the page: strict CSP, no inline script, revalidated; hashed assets cached for good', async () => {
    const res = await fetch(`${base(t)}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self';/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(html, /style=/);
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.equal(assets.length, 2);
    for (const a of assets) {
      assert.match(a, /-[A-Z0-9]{8}\.(js|css)$/, 'hashed name');
      const r = await fetch(`${base(t)}${a}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.ok(r.headers.get('content-security-policy'));
      const body = await r.text();
      assert.doesNotMatch(body, /\beval\(|new Function\(/, 'no eval in the bundle');
    }
    assert.equal((await fetch(`${base(t)}/assets/nothing-here.js`)).status, 404);
  });

  test('sign-in: a wrong token is 401, a client token 403 with what to use, an admin token a session cookie', async () => {
    const wrong = await signIn(t, 'trv1_nosuchtokennosuchtokennosuchtoken');
    assert.equal(wrong.status, 401);
    assert.match(((await wrong.json()) as { message: string }).message, /does not sign in/);
    const asClient = await signIn(t, client);
    assert.equal(asClient.status, 403);
    assert.equal(asClient.headers.get('set-cookie'), null);
    assert.match(((await asClient.json()) as { message: string }).message, /client token of "laptop".*needs an admin token \(traverse token create --admin NAME\)/);
    const ok = await signIn(t, admin);
    assert.equal(ok.status, 200);
    const cookie = ok.headers.get('set-cookie')!;
    assert.match(cookie, /^traverse_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.doesNotMatch(cookie, /Secure/, 'plain HTTP: no Secure flag (the browser would drop the cookie)');
    assert.match(sessionCookie('x', 60, true), /; Secure$/);
    const body = (await ok.json()) as { signedIn: boolean; name: string; csrf: string };
    assert.equal(body.signedIn, true);
    assert.equal(body.name, 'ops');
    assert.ok(!JSON.stringify(body).includes(admin), 'the token is not echoed');
  });

  test('sign-in needs the form and our own origin; a token in the URL signs nobody in', async () => {
    assert.equal((await signIn(t, admin, { origin: 'http://evil.example' })).status, 403);
    const json = await fetch(`${base(t)}/dashboard/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: admin }) });
    assert.equal(json.status, 415);
    const viaUrl = await fetch(`${base(t)}/dashboard/api/session?token=${encodeURIComponent(admin)}`);
    assert.deepEqual(await viaUrl.json(), { signedIn: false });
    assert.equal(viaUrl.headers.get('set-cookie'), null);
  });

  test('without a session the data is 401; with one, the session says who and the CSRF token', async () => {
    assert.equal((await fetch(`${base(t)}/dashboard/api/events`)).status, 401);
    assert.equal((await fetch(`${base(t)}/dashboard/api/history?kind=client&name=laptop`)).status, 401);
    const s = await signedIn(t, admin);
    const info = (await (await fetch(`${base(t)}/dashboard/api/session`, { headers: { cookie: s.cookie } })).json()) as { signedIn: boolean; csrf: string };
    assert.equal(info.signedIn, true);
    assert.equal(info.csrf, s.csrf);
    const h = await fetch(`${base(t)}/dashboard/api/history?kind=client&name=laptop`, { headers: { cookie: s.cookie } });
    assert.equal(h.status, 200);
  });

  test('state-changing requests need the CSRF token and our origin', async () => {
    const s = await signedIn(t, admin);
    const body = { kind: 'client', name: 'tablet', allow: ['dev-box'] };
    assert.equal((await post(t, '/dashboard/api/tokens', { ...s, csrf: '' }, body)).status, 403, 'no CSRF token');
    assert.equal((await post(t, '/dashboard/api/tokens', { ...s, csrf: 'x'.repeat(43) }, body)).status, 403, 'wrong CSRF token');
    assert.equal((await post(t, '/dashboard/api/tokens', s, body, { origin: 'http://evil.example' })).status, 403, 'another origin');
    assert.equal((await post(t, '/dashboard/api/tokens', { cookie: '', csrf: s.csrf }, body)).status, 401, 'no session');
    assert.equal(await t.store.findIdentity('client', 'tablet'), undefined, 'nothing was created');
  });

  test('tokens: created once, usable at once; revoked, refused at once; allow lists edited', async () => {
    const s = await signedIn(t, admin);
    const created = await post(t, '/dashboard/api/tokens', s, { kind: 'client', name: 'tablet', allow: ['dev-box'], expiresInDays: 3 }, { origin: base(t) });
    assert.equal(created.status, 201);
    const c = (await created.json()) as { token: string; hint: string; expiresAt: number };
    assert.match(c.token, /^trv1_/);
    assert.ok(c.expiresAt > Date.now() + 2 * 86_400_000);
    assert.deepEqual(await t.store.allowedAgents('tablet'), ['dev-box']);
    const peers = await fetch(`${base(t)}/api/v1/peers`, { headers: { authorization: `Bearer ${c.token}` } });
    assert.equal(peers.status, 200);
    const allow = await post(t, '/dashboard/api/allow', s, { client: 'tablet', agents: ['build-box', 'ci'] });
    assert.equal(allow.status, 200);
    assert.deepEqual((await t.store.allowedAgents('tablet')).sort(), ['build-box', 'ci']);
    const listing = (await t.store.listIdentities()).find((i) => i.name === 'tablet')!;
    const revoke = await post(t, '/dashboard/api/tokens/revoke', s, { tokenId: listing.tokens[0]!.id });
    assert.equal(revoke.status, 200);
    const after = await fetch(`${base(t)}/api/v1/peers`, { headers: { authorization: `Bearer ${c.token}` } });
    assert.equal(after.status, 401);
    assert.equal((await post(t, '/dashboard/api/tokens/revoke', s, { tokenId: listing.tokens[0]!.id })).status, 404, 'already revoked');
    assert.equal((await post(t, '/dashboard/api/tokens', s, { kind: 'agent', name: 'bad name!' })).status, 400);
    assert.equal((await post(t, '/dashboard/api/tokens', s, 'x'.repeat(20_000))).status, 413);
  });

  test('sign-out ends the session; revoking the admin token ends its sessions too', async () => {
    const s = await signedIn(t, admin);
    const out = await post(t, '/dashboard/api/signout', s, {});
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie')!, /Max-Age=0/);
    assert.equal((await fetch(`${base(t)}/dashboard/api/events`, { headers: { cookie: s.cookie } })).status, 401);
    const second = await t.token('admin', 'second');
    const s2 = await signedIn(t, second);
    const id = (await t.store.listIdentities()).find((i) => i.name === 'second')!.tokens[0]!.id;
    await t.store.revokeToken(id, Date.now());
    const info = (await (await fetch(`${base(t)}/dashboard/api/session`, { headers: { cookie: s2.cookie } })).json()) as { signedIn: boolean };
    assert.equal(info.signedIn, false);
  });

  test('the live feed: a snapshot first, over server-sent events', async () => {
    const s = await signedIn(t, admin);
    const ac = new AbortController();
    const res = await fetch(`${base(t)}/dashboard/api/events`, { headers: { cookie: s.cookie }, signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot\ndata: ')) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.endsWith('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    const snap = JSON.parse(text.split('event: snapshot\ndata: ')[1]!.split('\n')[0]!) as { identities: { id: string }[] };
    assert.ok(snap.identities.some((i) => i.id === 'client:laptop'));
    ac.abort();
  });

  test('sign-in is rate limited per address: after the burst of failures even a right token waits', async () => {
    let status = 0;
    for (let i = 0; i < 8 && status !== 429; i++) status = (await signIn(t, `trv1_wrongwrongwrongwrongwrong${i}`)).status;
    assert.equal(status, 429);
    const right = await signIn(t, admin);
    assert.equal(right.status, 429);
    assert.equal(right.headers.get('retry-after'), '10');
  });
});

describe('dashboard: the matrix report', () => {
  test('served as an inert SVG under the session; a broken report is a clear 500', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'traverse-matrix-'));
    const file = join(dir, 'matrix.json');
    const cell = { name: 'hard / hard', agent: 'hard', client: 'hard', expect: 'relay', runs: 1, direct: 0, failed: 0, timeToDirectMs: null, reason: 'both NATs are hard' };
    writeFileSync(file, JSON.stringify({ title: 'm', generatedAt: 'now', cells: [cell] }));
    const t = await startTestServer({ dashboard: { matrixReport: file } });
    try {
      const s = await signedIn(t, await t.token('admin', 'ops'));
      assert.equal((await fetch(`${base(t)}/dashboard/matrix.svg`)).status, 401);
      const res = await fetch(`${base(t)}/dashboard/matrix.svg`, { headers: { cookie: s.cookie } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/svg+xml');
      assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
      assert.match(await res.text(), /data-cell="hard \/ hard" data-outcome="relay"/);
      writeFileSync(file, '{"cells": 7}');
      const broken = await fetch(`${base(t)}/dashboard/matrix.svg`, { headers: { cookie: s.cookie } });
      assert.equal(broken.status, 500);
      assert.match(((await broken.json()) as { message: string }).message, /matrix\.json/);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dashboard over TLS', () => {
  test('the session cookie is Secure, and the page origin is https', async (t) => {
    if (!hasOpenssl()) return skipOrFail(t, 'no openssl to make a test certificate (apt-get install openssl)');
    const ca = makeTestCa();
    const { certFile, keyFile } = ca.issue('server', ['127.0.0.1']);
    const server = await startTestServer({ tls: new CertificateHolder(loadCertificateFiles(certFile, keyFile)) });
    try {
      const admin = await server.token('admin', 'ops');
      const signIn = (origin: string): Promise<{ status: number; cookie: string | undefined }> =>
        new Promise((resolve, reject) => {
          const body = new URLSearchParams({ token: admin }).toString();
          const req = httpsRequest(
            {
              host: '127.0.0.1',
              port: server.server.port,
              path: '/dashboard/api/session',
              method: 'POST',
              ca: readFileSync(ca.caFile),
              headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), origin },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, cookie: res.headers['set-cookie']?.[0] }));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const ok = await signIn(`https://127.0.0.1:${server.server.port}`);
      assert.equal(ok.status, 200);
      assert.match(ok.cookie ?? '', /; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
      assert.equal((await signIn(`http://127.0.0.1:${server.server.port}`)).status, 403, 'the plain-HTTP origin is another origin');
    } finally {
      await server.close();
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });
});
