// Endpoint notation shared by every layer: "203.0.113.7:3478", "[2001:db8::1]:3478".
import { isIP } from 'node:net';
import { formatIPv6, writeIPv6 } from './ip.js';

export interface Endpoint {
  /** A literal IPv4 or IPv6 address (never a host name). */
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export class EndpointError extends Error {
  override readonly name = 'EndpointError';
}

/** Formats an endpoint the way users type it: IPv6 in brackets. */
export function formatEndpoint(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export function parsePort(text: string, what = 'port'): number {
  if (!/^\d{1,5}$/.test(text)) throw new EndpointError(`${what} "${text}" is not a number from 0 to 65535`);
  const port = Number(text);
  if (port > 65535) throw new EndpointError(`${what} ${port} is larger than 65535`);
  return port;
}

export interface HostPort {
  /** A literal address or a host name still to be resolved. */
  readonly host: string;
  readonly port: number;
}

/**
 * Parses "host:port", "host" (with defaultPort), "[v6]:port" or a bare IPv6 literal.
 * Throws EndpointError with a message meant for the user.
 */
export function parseHostPort(text: string, defaultPort?: number): HostPort {
  const t = text.trim();
  if (t === '') throw new EndpointError('empty address; expected HOST:PORT');
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracketed) {
    const host = bracketed[1] ?? '';
    if (isIP(host) !== 6) throw new EndpointError(`"${host}" in brackets is not an IPv6 address`);
    return { host, port: portOrDefault(bracketed[2], defaultPort, t) };
  }
  // An IPv6 literal has two colons at least; asking net.isIP only then spares "host:port" the
  // first use of Node's IPv6 pattern, whose compilation costs a start-up (traverse proxy) ~3 ms.
  const colon = t.lastIndexOf(':');
  if (t.indexOf(':') !== colon && isIP(t) === 6) return { host: t, port: portOrDefault(undefined, defaultPort, t) };
  if (colon === -1) return { host: t, port: portOrDefault(undefined, defaultPort, t) };
  const host = t.slice(0, colon);
  if (host === '') throw new EndpointError(`"${t}" has no host before the port`);
  return { host, port: parsePort(t.slice(colon + 1)) };
}

function portOrDefault(port: string | undefined, def: number | undefined, whole: string): number {
  if (port !== undefined) return parsePort(port);
  if (def === undefined) throw new EndpointError(`"${whole}" has no port; expected HOST:PORT`);
  return def;
}

/**
 * Splits an endpoint as formatEndpoint writes it and peers publish it ("ip:port", "[v6]:port"),
 * or null if the text is not one: no port, a host name, an IPv6 address without brackets, or a
 * port outside 1-65535 (port 0 is nowhere a packet can be sent). For text that users type, with
 * messages that say what is wrong, use parseHostPort or parseEndpoint.
 */
export function splitEndpoint(text: string): { address: string; port: number } | null {
  if (text.trim() !== text) return null;
  let hp: HostPort;
  try {
    hp = parseHostPort(text);
  } catch {
    return null;
  }
  return isIP(hp.host) !== 0 && hp.port > 0 ? { address: hp.host, port: hp.port } : null;
}

/** Like parseHostPort, but the host must already be an IP literal. */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const hp = parseHostPort(text, defaultPort);
  const fam = isIP(hp.host);
  if (fam === 0) throw new EndpointError(`"${hp.host}" is not an IP address`);
  return { address: hp.host, port: hp.port, family: fam as 4 | 6 };
}

/**
 * An endpoint in the one text form the socket reports sources in (IPv6 per RFC 5952: lowercase,
 * zeros compressed), so "[2001:DB8:0::1]:4000" and "[2001:db8::1]:4000" are one endpoint; text
 * that is not an endpoint is returned as it is.
 */
export function canonicalEndpoint(text: string): string {
  const ep = splitEndpoint(text);
  if (!ep || isIP(ep.address) !== 6) return text;
  const b = new Uint8Array(16);
  return writeIPv6(ep.address, b, 0) ? formatEndpoint(formatIPv6(b, 0), ep.port) : text;
}
