// The plain-HTTP part of the server: health, the read-only state API and metrics.
//   GET /healthz          200 {"ok":true,"peers":N}, no authentication (for load balancers)
//   GET /api/v1/peers     connected nodes the caller may see (bearer token; admin sees all)
//   GET /api/v1/tunnels   tunnels the caller takes part in, with reported paths (admin: all)
//   GET /api/v1/identities every identity, online or not, with last connect/disconnect; admin token
//   GET /metrics          Prometheus text; admin token (the --metrics listener needs none)
// The bodies are the schemas of src/coordination/views.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Hub, Viewer } from './hub.js';
import { PROTOCOL_PATH } from '../coordination/protocol.js';
import type { Authenticated, IdentityListing } from './store/store.js';
import type { IdentityView } from '../coordination/views.js';
import { Router } from './router.js';
import type { NetworkConfig } from '../coordination/views.js';

export interface ApiContext {
  readonly hub: Hub;
  readonly registry: Registry;
  /** Resolves the request's bearer token, or says why not (none, unknown, expired, revoked, throttled). */
  authenticate(req: IncomingMessage): Promise<AuthOutcome>;
  allowedAgents(clientName: string): Promise<string[]>;
  /** Every identity of the store (for the admins' identities view). */
  identities(): Promise<IdentityListing[]>;
  /** What a node would be told at connect (STUN servers as this request reaches us, relay, block-direct). */
  networkConfig(req: IncomingMessage): NetworkConfig;
}

/** The routes of the API, bound to one server's state. */
export function apiRouter(ctx: ApiContext): Router {
  const withViewer = (view: (viewer: Viewer) => unknown) => async (req: IncomingMessage, res: ServerResponse) => {
    const auth = await ctx.authenticate(req);
    if (isRefused(auth)) return refuse(res, auth);
    json(res, 200, view(await viewerFor(ctx, auth)));
  };
  return new Router()
    .get('/healthz', (_req, res) => json(res, 200, { ok: true, peers: ctx.hub.size }))
    .get(PROTOCOL_PATH, (_req, res) => json(res, 426, { error: 'this endpoint speaks WebSocket only' }))
    // For tools that need the network settings without joining as a node (netcheck).
    .get('/api/v1/config', async (req, res) => {
      const auth = await ctx.authenticate(req);
      if (isRefused(auth)) return refuse(res, auth);
      json(res, 200, ctx.networkConfig(req));
    })
    .get('/api/v1/peers', withViewer((viewer) => ({ peers: ctx.hub.peersView(viewer) })))
    .get('/api/v1/tunnels', withViewer((viewer) => ({ tunnels: ctx.hub.tunnelsView(viewer) })))
    .get('/api/v1/identities', async (req, res) => {
      const auth = await ctx.authenticate(req);
      if (isRefused(auth)) return refuse(res, auth);
      if (auth.identity.kind !== 'admin') return json(res, 403, { error: 'the identities view needs an admin token' });
      json(res, 200, { identities: identitiesView(ctx.hub, await ctx.identities()) });
    })
    .get('/metrics', async (req, res) => {
      const auth = await ctx.authenticate(req);
      if (isRefused(auth)) return refuse(res, auth);
      if (auth.identity.kind !== 'admin') return json(res, 403, { error: 'metrics need an admin token' });
      return metrics(ctx.registry, res);
    });
}

/** What authentication of a request came to: whose token, or why not. */
export type AuthOutcome = Authenticated | AuthRefused;

/** A request whose token does not authenticate: 401 (with what is wrong with it) or 429. */
export interface AuthRefused {
  readonly refused: 'unauthorized' | 'throttled';
  /** One sentence for the holder of the token: unknown, expired (when), revoked (when). */
  readonly message: string;
}

export function isRefused(a: AuthOutcome): a is AuthRefused {
  return 'refused' in a;
}

export async function handleHttp(router: Router, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The API only reads: a request body is refused unread, and the connection closed, so a large
  // body costs its sender, not the server.
  if (hasBody(req)) {
    res.shouldKeepAlive = false;
    json(res, 413, { error: 'this API takes no request body' }, { connection: 'close' });
    req.socket.destroySoon();
    return;
  }
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const route = router.match(req.method, path);
  if (route === 404) return json(res, 404, { error: 'not found' });
  if (route === 405) return json(res, 405, { error: 'only GET is supported' }, { allow: router.allowed(path).join(', ') });
  await route.handler(req, res);
}

async function viewerFor(ctx: ApiContext, auth: Authenticated): Promise<Viewer> {
  const { kind, name } = auth.identity;
  if (kind === 'admin') return { kind };
  if (kind === 'agent') return { kind, name };
  return { kind, name, allow: new Set(await ctx.allowedAgents(name)) };
}

function identitiesView(hub: Hub, identities: readonly IdentityListing[]): IdentityView[] {
  return identities.map((i) => identityView(hub, i));
}

/** One identity as the API (and the dashboard) shows it: with how many of its nodes are online. */
export function identityView(hub: Hub, i: IdentityListing): IdentityView {
  return {
    kind: i.kind,
    name: i.name,
    onlineNodes: i.kind === 'admin' ? 0 : hub.nodesOf(i.kind, i.name).length,
    createdAt: i.createdAt,
    lastConnectedAt: i.lastConnectedAt,
    lastDisconnectedAt: i.lastDisconnectedAt,
  };
}

export async function metrics(registry: Registry, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(await registry.metrics());
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function refuse(res: ServerResponse, why: AuthRefused): void {
  if (why.refused === 'throttled') return json(res, 429, { error: 'too many requests', message: why.message }, { 'retry-after': '10' });
  json(res, 401, { error: 'unauthorized', message: why.message }, { 'www-authenticate': 'Bearer' });
}


function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}
