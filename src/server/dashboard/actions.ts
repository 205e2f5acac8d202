// What an admin changes from the dashboard: tokens (created, shown once; revoked) and a client's
// allow list. The store's policy version makes the running server apply each change to connected
// nodes within a second (a revoked token's nodes are closed, a dropped agent's tunnels end).
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as z from 'zod';
import type { Store } from '../store/store.js';
import type { Logger } from '../../log/logger.js';
import { identityName } from '../../coordination/protocol.js';
import { generateToken, hashToken } from '../tokens.js';
import { readJson, sendJson } from './http.js';
import type { Session } from './sessions.js';

const createTokenBody = z.object({
  kind: z.enum(['agent', 'client', 'admin']),
  name: identityName,
  /** Days until it expires; absent or null: never. */
  expiresInDays: z.number().int().min(1).max(3650).nullable().optional(),
  allow: z.array(identityName).max(256).optional(),
});
const revokeBody = z.object({ tokenId: z.number().int().positive() });
const allowBody = z.object({ client: identityName, agents: z.array(identityName).max(256) });

export interface ActionDeps {
  readonly store: Store;
  readonly log: Logger;
  /** Something changed: the live views should look again now. */
  changed(): void;
}

type Handler = (req: IncomingMessage, res: ServerResponse, s: Session) => Promise<void>;

export interface AdminActions {
  /** POST /dashboard/api/tokens {kind, name, expiresInDays?, allow?}: the new token, once. */
  readonly createToken: Handler;
  /** POST /dashboard/api/tokens/revoke {tokenId}. */
  readonly revokeToken: Handler;
  /** POST /dashboard/api/allow {client, agents}: the client's whole allow list. */
  readonly setAllow: Handler;
}

export function adminActions({ store, log, changed }: ActionDeps): AdminActions {
  return {
    async createToken(req: IncomingMessage, res: ServerResponse, s: Session): Promise<void> {
      const body = createTokenBody.safeParse(await readJson(req));
      if (!body.success) return sendJson(res, 400, { error: 'bad request', message: body.error.issues[0]?.message ?? 'invalid' });
      const { kind, name, expiresInDays, allow } = body.data;
      if (allow && allow.length > 0 && kind !== 'client') return sendJson(res, 400, { error: 'bad request', message: 'only a client has an allow list' });
      const now = Date.now();
      const identity = await store.ensureIdentity(kind, name, now);
      const token = generateToken();
      const info = await store.createToken(identity.id, hashToken(token), now, expiresInDays ? now + expiresInDays * 86_400_000 : null);
      if (kind === 'client' && allow && allow.length > 0) await store.allow(name, allow, now);
      log.info({ admin: s.name, kind, name, token: info.hint }, 'token created from the dashboard');
      changed();
      sendJson(res, 201, { kind, name, token, hint: info.hint, expiresAt: info.expiresAt });
    },

    async revokeToken(req: IncomingMessage, res: ServerResponse, s: Session): Promise<void> {
      const body = revokeBody.safeParse(await readJson(req));
      if (!body.success) return sendJson(res, 400, { error: 'bad request', message: 'give tokenId' });
      const revoked = await store.revokeToken(body.data.tokenId, Date.now());
      // A revoked admin token ends its sessions too: every session check joins the token's row
      // (the server's policy poll ends nodes' connections).
      log.info({ admin: s.name, tokenId: body.data.tokenId, revoked }, 'token revoked from the dashboard');
      sendJson(res, revoked ? 200 : 404, revoked ? { revoked: true } : { error: 'not found', message: 'no such token, or it was already revoked' });
    },

    async setAllow(req: IncomingMessage, res: ServerResponse, s: Session): Promise<void> {
      const body = allowBody.safeParse(await readJson(req));
      if (!body.success) return sendJson(res, 400, { error: 'bad request', message: body.error.issues[0]?.message ?? 'invalid' });
      const { client, agents } = body.data;
      if (!(await store.findIdentity('client', client))) return sendJson(res, 404, { error: 'not found', message: `no client "${client}"` });
      const before = new Set(await store.allowedAgents(client));
      const wanted = new Set(agents);
      const add = [...wanted].filter((a) => !before.has(a));
      const drop = [...before].filter((a) => !wanted.has(a));
      if (add.length > 0) await store.allow(client, add, Date.now());
      if (drop.length > 0) await store.disallow(client, drop);
      log.info({ admin: s.name, client, add, drop }, 'allow list changed from the dashboard');
      changed();
      sendJson(res, 200, { client, allow: [...wanted].sort() });
    },
  };
}
