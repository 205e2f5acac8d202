// The operators' dashboard, served by `traverse server` on its own port:
//   GET  /                          the page (built front end, web/ -> dist/web)
//   GET  /assets/<name>-<hash>.*    its script and style, cached for good
//   GET  /dashboard/api/session     whether this browser is signed in, and its CSRF token
//   POST /dashboard/api/session     sign in: form field `token` (an admin token) -> session cookie
//   POST /dashboard/api/signout     ends the session                                   [CSRF]
//   GET  /dashboard/api/events      server-sent events: a snapshot, then patches (feed.ts)
//   GET  /dashboard/api/history     ?kind=client&name=laptop: that identity's timeline
//   POST /dashboard/api/tokens      create a token (shown once)                        [CSRF]
//   POST /dashboard/api/tokens/revoke  revoke one token by id                         [CSRF]
//   POST /dashboard/api/allow       set a client's allow list                          [CSRF]
//   GET  /dashboard/matrix.svg      the connectivity matrix of --matrix-report FILE
// Everything but the page, its assets and sign-in needs a session; [CSRF] requests also need the
// session's CSRF token in x-csrf-token and, when the browser sends one, our own Origin. The
// cookie is SameSite=Strict as well, so a cross-site page can neither send nor read any of it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import type { Hub } from '../hub.js';
import type { Store } from '../store/store.js';
import type { AuthOutcome } from '../http-api.js';
import type { Logger } from '../../log/logger.js';
import { identityName } from '../../coordination/protocol.js';
import { loadAssets, type Asset } from './assets.js';
import { DEFAULT_FEED, Feed, type DashboardSource } from './feed.js';
import { hubSource, type ReplicaNames } from './source.js';
import { BodyError, SECURITY_HEADERS, isTls, readBody, sameOrigin, sendJson } from './http.js';
import { DEFAULT_SESSIONS, SESSION_COOKIE, Sessions, cookieValue, sessionCookie, type Session, type SessionOptions } from './sessions.js';
import { matrixReport, matrixSvg } from './matrix-svg.js';
import { adminActions } from './actions.js';
import type { HistoryEntry, SessionInfo } from './wire.js';

export interface DashboardOptions {
  readonly hub: Hub;
  readonly store: Store;
  /** The server's own token check, with its per-address throttle of failures (the client's address as the server sees it, behind a trusted proxy too). */
  authenticateToken(req: IncomingMessage, token: string): Promise<AuthOutcome>;
  /** A matrix report (JSON, as bench:matrix writes it) to show; read at every request. */
  readonly matrixReport?: string;
  readonly logger: Logger;
  readonly sessions?: Partial<SessionOptions>;
  /** How often the live feed compares (ms); tests make it quicker. */
  readonly feedIntervalMs?: number;
  /** Where the built front end is (default dist/web). */
  readonly webDir?: string;
  /** What the live views show (default: the hub and the store); the benchmark feeds its own. */
  readonly source?: DashboardSource;
  /** With replicas: how to name the server each node is connected to. */
  readonly replicas?: ReplicaNames;
}

export interface Dashboard {
  /** Whether a request path is the dashboard's. */
  handles(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  close(): void;
}

const HISTORY_LIMIT = 200;
/** How often an open page's live stream checks that its session still holds. */
const SESSION_CHECK_MS = 1000;

export function createDashboard(opts: DashboardOptions): Dashboard {
  const { hub, store, logger: log } = opts;
  const assets: Map<string, Asset> | undefined = loadAssets(opts.webDir);
  const sessions = new Sessions(store, { ...DEFAULT_SESSIONS, ...opts.sessions });
  const feed = new Feed(
    opts.source ?? hubSource(hub, () => store.listIdentities(), opts.replicas),
    { ...DEFAULT_FEED, intervalMs: opts.feedIntervalMs ?? DEFAULT_FEED.intervalMs, matrix: opts.matrixReport !== undefined },
    Date.now,
    (err) => log.error({ err }, 'dashboard feed failed'),
  );
  const streams = new Set<ServerResponse>();
  const actions = adminActions({ store, log, changed: () => void feed.tick() });

  /** The request's live session (from the store: any replica's, refused once its admin token is revoked or expired). */
  function sessionOf(req: IncomingMessage): Promise<Session | undefined> {
    return sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
  }

  function csrfOk(req: IncomingMessage, s: Session): boolean {
    const given = req.headers['x-csrf-token'];
    if (typeof given !== 'string' || !sameOrigin(req)) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(s.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async function signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'forbidden', message: 'sign-in must come from this server\'s own page' });
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
      return sendJson(res, 415, { error: 'unsupported', message: 'sign in with the form (application/x-www-form-urlencoded)' });
    }
    const token = new URLSearchParams(await readBody(req)).get('token')?.trim() ?? '';
    if (token === '') return sendJson(res, 400, { error: 'bad request', message: 'paste an admin token' });
    const auth = await opts.authenticateToken(req, token);
    if ('refused' in auth) {
      if (auth.refused === 'throttled') return sendJson(res, 429, { error: 'too many requests', message: auth.message }, { 'retry-after': '10' });
      return sendJson(res, 401, { error: 'unauthorized', message: `this token does not sign in: ${auth.message}` });
    }
    const { identity, token: info } = auth;
    if (identity.kind !== 'admin') {
      return sendJson(res, 403, {
        error: 'forbidden',
        message: `this is the ${identity.kind} token of "${identity.name}"; the dashboard needs an admin token (traverse token create --admin NAME)`,
      });
    }
    // The session ends at the earlier of its own lifetime and the token's expiry.
    const s = await sessions.create(identity.name, info.id, info.expiresAt);
    const maxAge = Math.floor((s.expiresAt - Date.now()) / 1000);
    log.info({ admin: identity.name, from: req.socket.remoteAddress }, 'dashboard sign-in');
    const body: SessionInfo = { signedIn: true, name: s.name, csrf: s.csrf, expiresAt: s.expiresAt };
    sendJson(res, 200, body, { 'set-cookie': sessionCookie(s.id, Math.max(0, maxAge), isTls(req)) });
  }

  async function events(req: IncomingMessage, res: ServerResponse, s: Session): Promise<void> {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    let unsubscribe: (() => void) | null = null;
    let gone = false;
    // Signed out, revoked or expired (on any replica): the stream ends with a word to the page.
    // Checked every second, so a revoked admin token loses its open pages within about a second.
    const check = setInterval(() => {
      void sessionOf(req).then(
        (still) => {
          if (still?.id === s.id) return void res.write(': alive\n\n');
          res.write('event: signedout\ndata: {}\n\n');
          res.end();
        },
        (err: unknown) => log.warn({ err }, 'dashboard session check failed'),
      );
    }, SESSION_CHECK_MS);
    res.on('close', () => {
      gone = true;
      clearInterval(check);
      unsubscribe?.();
      streams.delete(res);
    });
    // A page that cannot keep up (4 MiB unsent) is dropped; its EventSource reconnects and starts
    // again from a snapshot.
    const stop = await feed.subscribe((event, data) => {
      if (gone) return false;
      if (res.writableLength > 4 * 1024 * 1024) {
        res.end();
        return false;
      }
      res.write(`event: ${event}\ndata: ${data}\n\n`);
      return true;
    });
    if (gone) stop(); // the page left while its snapshot was being made
    else unsubscribe = stop;
  }

  async function history(res: ServerResponse, url: URL): Promise<void> {
    const kind = z.enum(['agent', 'client', 'admin']).safeParse(url.searchParams.get('kind'));
    const name = identityName.safeParse(url.searchParams.get('name'));
    if (!kind.success || !name.success) return sendJson(res, 400, { error: 'bad request', message: 'give kind (agent, client, admin) and name' });
    const identity = await store.findIdentity(kind.data, name.data);
    if (!identity) return sendJson(res, 404, { error: 'not found', message: `no ${kind.data} "${name.data}"` });
    const entries: HistoryEntry[] = [];
    for (const c of await store.connectionHistory(identity.id, HISTORY_LIMIT)) {
      entries.push({ at: c.connectedAt, kind: 'connect', text: `connected${c.remote ? ` from ${c.remote}` : ''}` });
      if (c.disconnectedAt !== null) entries.push({ at: c.disconnectedAt, kind: 'disconnect', text: c.reason ?? 'disconnected' });
    }
    for (const p of await store.pathHistory(identity.id, HISTORY_LIMIT)) {
      const path = p.path.kind === 'direct' ? `direct${p.path.transport === 'tcp' ? ' over TCP' : ''} (${p.path.endpoint})` : 'relay';
      const who = p.byThisIdentity ? `${identity.name} reports` : `${p.other.name} reports`;
      entries.push({ at: p.reportedAt, kind: 'path', text: `tunnel with ${p.other.kind} "${p.other.name}": ${path} (${who})` });
    }
    entries.sort((a, b) => b.at - a.at);
    sendJson(res, 200, { identity: { kind: kind.data, name: name.data }, entries: entries.slice(0, HISTORY_LIMIT) });
  }

  function matrix(res: ServerResponse): void {
    if (opts.matrixReport === undefined) return sendJson(res, 404, { error: 'not found', message: 'the server was started without --matrix-report' });
    let svg: string;
    try {
      svg = matrixSvg(matrixReport.parse(JSON.parse(readFileSync(opts.matrixReport, 'utf8'))));
    } catch (err) {
      return sendJson(res, 500, { error: 'matrix report unreadable', message: `${opts.matrixReport}: ${(err as Error).message.split('\n')[0]}` });
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'image/svg+xml', 'cache-control': 'no-store' });
    res.end(svg);
  }

  function serveAsset(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (!assets) {
      return sendJson(res, 503, { error: 'dashboard not built', message: 'the front end is missing: run `npm run build` in the traverse source folder' });
    }
    const a = assets.get(path);
    if (!a) return sendJson(res, 404, { error: 'not found' });
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': a.type,
      'content-length': String(a.body.length),
      'cache-control': a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const reading = method === 'GET' || method === 'HEAD';
    if (path === '/' || path.startsWith('/assets/')) {
      if (!reading) return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return serveAsset(req, res, path);
    }
    if (path === '/dashboard/api/session' && method === 'POST') return signIn(req, res);
    const s = await sessionOf(req);
    if (path === '/dashboard/api/session' && reading) {
      const info: SessionInfo = s ? { signedIn: true, name: s.name, csrf: s.csrf, expiresAt: s.expiresAt } : { signedIn: false };
      return sendJson(res, 200, info);
    }
    if (!s) return sendJson(res, 401, { error: 'unauthorized', message: 'sign in with an admin token first' });
    if (reading) {
      if (path === '/dashboard/api/events') return method === 'GET' ? events(req, res, s) : sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
      if (path === '/dashboard/api/history') return history(res, url);
      if (path === '/dashboard/matrix.svg') return matrix(res);
      return sendJson(res, 404, { error: 'not found' });
    }
    if (method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, POST' });
    if (!csrfOk(req, s)) return sendJson(res, 403, { error: 'forbidden', message: 'missing or wrong CSRF token, or another origin' });
    switch (path) {
      case '/dashboard/api/signout':
        await sessions.end(s.id);
        return sendJson(res, 200, { signedIn: false }, { 'set-cookie': sessionCookie('', 0, isTls(req)) });
      case '/dashboard/api/tokens':
        return actions.createToken(req, res, s);
      case '/dashboard/api/tokens/revoke':
        return actions.revokeToken(req, res, s);
      case '/dashboard/api/allow':
        return actions.setAllow(req, res, s);
    }
    return sendJson(res, 404, { error: 'not found' });
  }

  return {
    handles: (pathname) => pathname === '/' || pathname.startsWith('/assets/') || pathname.startsWith('/dashboard/'),
    async handle(req, res) {
      try {
        await route(req, res);
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        // Too large: answered at once, and the connection closed after the answer, so the rest
        // of the body is never read.
        const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        if (err.status === 413) res.shouldKeepAlive = false;
        if (!res.headersSent) sendJson(res, err.status, { error: 'bad request', message: err.message }, close);
      }
    },
    close() {
      feed.close();
      for (const r of streams) r.end();
    },
  };
}
