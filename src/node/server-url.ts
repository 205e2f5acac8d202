// The coordination server's URL as users type it: http(s)://host:port, ws(s)://host:port, or a
// bare host:port (taken as http://). Anything else is refused with what was expected, before a
// connection is tried.
export class ServerUrlError extends Error {}

const SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);

export function parseServerUrl(text: string): URL {
  const trimmed = text.trim();
  if (trimmed === '') throw new ServerUrlError('the server URL is empty; expected e.g. http://coord.example:8080');
  // "localhost:8080" parses as a URL with the scheme "localhost:": a scheme-less host:port is
  // what people type, so it means http.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ServerUrlError(`"${text}" is not a URL; expected e.g. http://coord.example:8080`);
  }
  if (!SCHEMES.has(url.protocol)) {
    throw new ServerUrlError(`"${text}" has the scheme ${url.protocol.slice(0, -1)}; use http://, https://, ws:// or wss://`);
  }
  if (url.hostname === '') throw new ServerUrlError(`"${text}" names no host; expected e.g. http://coord.example:8080`);
  return url;
}

/**
 * The warning for a plain http:// or ws:// URL to a host that is not this machine: the bearer
 * token and every endpoint would cross the network readable by anyone on the path. Null when the
 * URL is https/wss or names loopback.
 */
export function cleartextWarning(url: URL): string | null {
  if (url.protocol === 'https:' || url.protocol === 'wss:') return null;
  if (isLoopbackHost(url.hostname)) return null;
  return `warning: ${url.protocol}//${url.host} is not encrypted: the token and the endpoints travel in clear text; use https:// (traverse server --tls-cert/--acme-domain)`;
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1') return true;
  if (/^::ffff:127\./.test(h)) return true;
  return /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * A comma-separated list of server URLs (replicas of one service), each parsed as above, in
 * order, duplicates dropped.
 */
export function parseServerUrls(text: string): URL[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > 1 && parts.some((p) => p === '')) {
    throw new ServerUrlError(`"${text}" has an empty entry; separate server URLs with single commas, e.g. http://a:8080,http://b:8080`);
  }
  const urls = parts.map(parseServerUrl);
  return [...new Map(urls.map((u) => [u.href, u])).values()];
}
