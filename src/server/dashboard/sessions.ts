// Dashboard sessions: an admin token, once, buys a random session id kept in an HttpOnly cookie,
// so the token itself never sits in the browser (no URL, no local storage). Each session has its
// own CSRF token, which every state-changing request must echo in a header.
//
// Sessions live in the store, not in the process: with several replicas behind a load balancer,
// any of them serves a session another one created (no sticky sessions), and a restarted server
// signs nobody out. The database keeps only the SHA-256 of the session id, so reading it signs
// nobody in. Every request reads the session back in one query that also checks the admin token:
// a token revoked on any replica (or by `traverse token revoke`) ends its sessions everywhere at
// the next request. Sessions expire, and the table is bounded: the oldest goes first.
import { randomBytes } from 'node:crypto';
import { hashToken } from '../tokens.js';
import type { Store } from '../store/store.js';

export interface Session {
  /** The session id as the cookie carries it (the store has only its hash). */
  readonly id: string;
  readonly csrf: string;
  /** The admin identity that signed in, and the token it used (revoking it ends the session). */
  readonly name: string;
  readonly tokenId: number;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface SessionOptions {
  /** How long a session lasts from sign-in (ms). */
  readonly ttlMs: number;
  /** Sessions kept at most; the oldest is dropped for a new one. */
  readonly max: number;
}

export const DEFAULT_SESSIONS: SessionOptions = { ttlMs: 8 * 3600_000, max: 1024 };

export const SESSION_COOKIE = 'traverse_session';

/** Session ids are 32 random bytes in base64url: 43 characters. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly opts: SessionOptions = DEFAULT_SESSIONS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session for an admin token; it ends at `tokenExpiresAt` if that comes first. */
  async create(name: string, tokenId: number, tokenExpiresAt: number | null = null): Promise<Session> {
    const t = this.now();
    const expiresAt = tokenExpiresAt === null ? t + this.opts.ttlMs : Math.min(t + this.opts.ttlMs, tokenExpiresAt);
    const s: Session = { id: random(), csrf: random(), name, tokenId, createdAt: t, expiresAt };
    await this.store.createSession({ idHash: hashToken(s.id), tokenId, csrf: s.csrf, createdAt: t, expiresAt }, this.opts.max);
    return s;
  }

  /** The live session with this id, or undefined (unknown, expired, or its token revoked or expired). */
  async get(id: string | undefined): Promise<Session | undefined> {
    if (id === undefined || !SESSION_ID.test(id)) return undefined;
    const s = await this.store.liveSession(hashToken(id), this.now());
    return s ? { id, csrf: s.csrf, name: s.name, tokenId: s.tokenId, createdAt: s.createdAt, expiresAt: s.expiresAt } : undefined;
  }

  async end(id: string): Promise<void> {
    await this.store.endSession(hashToken(id));
  }
}

function random(): string {
  return randomBytes(32).toString('base64url');
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie header of a session (maxAgeSec 0: the cookie is cleared). */
export function sessionCookie(value: string, maxAgeSec: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;
}
