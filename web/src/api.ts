// The page's calls to its server. The session lives in an HttpOnly cookie the page cannot read;
// the CSRF token it gets back is kept in memory only and sent on every state-changing request.
import type { SessionInfo } from '../../src/server/dashboard/wire.js';

let csrf = '';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
  if (!res.ok) throw new ApiError(res.status, body.message ?? body.error ?? `HTTP ${res.status}`);
  return body as T;
}

export async function session(): Promise<SessionInfo> {
  const s = await answer<SessionInfo>(await fetch('/dashboard/api/session', { credentials: 'same-origin' }));
  csrf = s.csrf ?? '';
  return s;
}

/** Sign-in posts the form's token in the body, never in a URL; the answer sets the cookie. */
export async function signIn(token: string): Promise<SessionInfo> {
  const res = await fetch('/dashboard/api/session', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  const s = await answer<SessionInfo>(res);
  csrf = s.csrf ?? '';
  return s;
}

export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
  });
  return answer<T>(res);
}

export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { credentials: 'same-origin' }));
}

export async function signOut(): Promise<void> {
  await post('/dashboard/api/signout');
  csrf = '';
}
