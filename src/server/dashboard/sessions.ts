// Dashboard sessions: an admin token, once, buys a random session id kept in an HttpOnly cookie,
// so the token itself never sits in the browser (no URL, no local storage). Each session has its
// own CSRF token, which every state-changing request must echo in a header. Sessions live in
// memory only (a restarted server signs everyone out), expire, and are bounded in number: the
// oldest goes first. Clock-injected for tests.
import { randomBytes } from 'node:crypto';

export interface Session {
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

export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly opts: SessionOptions = DEFAULT_SESSIONS,
    private readonly now: () => number = Date.now,
  ) {}

  create(name: string, tokenId: number): Session {
    const t = this.now();
    if (this.byId.size >= this.opts.max) this.byId.delete(this.byId.keys().next().value!);
    const s: Session = { id: random(), csrf: random(), name, tokenId, createdAt: t, expiresAt: t + this.opts.ttlMs };
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session with this id, or undefined (unknown or expired: then it is forgotten). */
  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.byId.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string): void {
    this.byId.delete(id);
  }

  /** Ends every session signed in with a token (revoked from the Tokens view or the CLI). */
  endForToken(tokenId: number): void {
    for (const [id, s] of this.byId) if (s.tokenId === tokenId) this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
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
