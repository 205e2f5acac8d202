// PostgreSQL URLs as given to --database / TRAVERSE_DATABASE_URL: which ones are accepted, and
// how one is shown. A URL may carry a password (postgres://user:secret@host/db, or
// ?password=secret); it is never printed or logged: every place that shows the URL or an error
// that might quote it goes through redaction here.

const SCHEMES = ['postgres:', 'postgresql:'];

/** Whether the text is meant as a PostgreSQL URL (as opposed to a data folder). */
export function isDatabaseUrl(text: string): boolean {
  return SCHEMES.some((s) => text.toLowerCase().startsWith(`${s}//`));
}

/** Why a --database value cannot be used, or undefined if it can. Never quotes the password. */
export function databaseUrlProblem(text: string): string | undefined {
  if (!isDatabaseUrl(text)) return 'use a postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE URL';
  try {
    const u = new URL(text);
    if (u.pathname.length <= 1) return 'name the database after the host, as in postgres://USER@HOST/DATABASE';
  } catch {
    return 'not a valid URL; a password with @, : or / in it must be percent-encoded';
  }
  return undefined;
}

/** The URL with its password (in the authority or the query) replaced by "***". */
export function redactedUrl(text: string): string {
  try {
    const u = new URL(text);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|key/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    // Not parseable: show the scheme only rather than risk a secret.
    return `${text.split('//')[0] ?? ''}//***`;
  }
}

/** `message` with every secret part of `url` (the password, raw or decoded, and the URL itself) redacted. */
export function redactDatabaseUrl(message: string, url: string): string {
  let out = message.split(url).join(redactedUrl(url));
  for (const secret of secretsOf(url)) out = out.split(secret).join('***');
  return out;
}

function secretsOf(url: string): string[] {
  const out: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) out.push(u.password, decodeURIComponent(u.password));
    for (const [key, value] of u.searchParams) if (/pass|secret|key/i.test(key) && value) out.push(value);
  } catch {
    // Unparseable URLs are never shown (redactedUrl), and their parts cannot be told apart.
  }
  // Longest first, so that a secret containing another is replaced whole.
  return [...new Set(out)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}
