// The servers a peer may connect to: every URL it was given, and for a DNS name every address
// the name has, each one a server of its own (replicas behind one name). The connection to an
// address keeps the URL's host name for the Host header and TLS, through a `lookup` that answers
// with that address only.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

export interface ServerTarget {
  /** Stable name of this target: the URL, plus the address when a name resolved to several. */
  readonly key: string;
  /** The server's URL as given (ws:// or wss:// with the protocol path added by the caller). */
  readonly url: string;
  /** The one address to connect to, or undefined to let the system resolve the name. */
  readonly address?: LookupAddress;
}

/** Every address of a host name, in the order to try them. */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

const systemResolve: Resolver = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/**
 * Every URL with each of its host's addresses, in the order given and the resolver's order. A
 * name that does not resolve now stays one target, so that trying it reports the DNS error.
 */
export async function resolveTargets(urls: readonly string[], resolve: Resolver = systemResolve): Promise<ServerTarget[]> {
  const out: ServerTarget[] = [];
  for (const url of urls) {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      out.push({ key: url, url });
      continue;
    }
    let addresses: LookupAddress[] = [];
    try {
      addresses = await resolve(host);
    } catch {
      // Left to the connection attempt, which fails with the resolver's message.
    }
    const unique = [...new Map(addresses.map((a) => [a.address, a])).values()];
    // One address per family (localhost as ::1 and 127.0.0.1) is one dual-stack server: the
    // system connects to it, trying both families (happy eyeballs), rather than us failing on
    // the family it does not listen on first. Several of one family are several servers.
    const perFamily = Math.max(unique.filter((a) => a.family === 4).length, unique.filter((a) => a.family === 6).length);
    if (perFamily <= 1) out.push({ key: url, url });
    else for (const a of unique) out.push({ key: `${url} (${a.address})`, url, address: a });
  }
  return out;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for net/tls/http that always answers with `address` (in the shape asked for). */
export function pinnedLookup(address: LookupAddress): (host: string, options: { all?: boolean }, callback: LookupCallback) => void {
  return (_host, options, callback) => {
    if (options.all) callback(null, [address]);
    else callback(null, address.address, address.family);
  };
}
