// The STUN server list, as every command takes it: `--stun HOST:PORT` (repeatable), the value
// `disable` to turn STUN off, or TRAVERSE_STUN (comma-separated) when no flag is given.
import type { Endpoint } from '../net/endpoint.js';
import { DEFAULT_PORT } from '../stun/constants.js';
import { UsageError } from './errors.js';
import { resolveEndpointFamilies } from './resolve.js';

export type StunServerList = { readonly disabled: true } | { readonly disabled: false; readonly servers: readonly string[] };

export function stunServerList(flags: readonly string[] | undefined, env = process.env): StunServerList | null {
  const values = flags && flags.length > 0 ? flags : (env.TRAVERSE_STUN ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (values.length === 0) return null;
  if (values.includes('disable')) {
    if (values.length > 1) throw new UsageError('--stun disable cannot be combined with STUN servers');
    return { disabled: true };
  }
  return { disabled: false, servers: values };
}

/** Each server's addresses: a host name with both A and AAAA records is probed over both families. */
export async function resolveStunServers(list: readonly string[]): Promise<Endpoint[]> {
  return (await Promise.all(list.map((s) => resolveEndpointFamilies(s, DEFAULT_PORT)))).flat();
}
