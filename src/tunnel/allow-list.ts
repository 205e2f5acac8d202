// Which targets an agent may connect to for its clients. Patterns are HOST:PORT where HOST is an
// IP, a CIDR block, a host name or "*", and PORT a number, a range "a-b" or "*". The default is
// the agent's own loopback: a client can reach services inside the workspace, nothing else.
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { parseHostPort } from '../net/endpoint.js';

export const DEFAULT_ALLOWED_TARGETS = ['127.0.0.0/8:*', '[::1]:*', 'localhost:*'];

interface Rule {
  readonly text: string;
  readonly host: { kind: 'any' } | { kind: 'name'; name: string } | { kind: 'net'; list: BlockList };
  readonly ports: readonly [number, number];
}

export class AllowListError extends Error {
  override readonly name = 'AllowListError';
}

function parseRule(text: string): Rule {
  const m = /^(.*):([^:\]]+)$/.exec(text.trim());
  if (!m) throw new AllowListError(`"${text}": expected HOST:PORT, e.g. 127.0.0.1:8080, 10.0.0.0/8:*, db.internal:5432`);
  let host = m[1]!;
  const portText = m[2]!;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  let ports: [number, number];
  if (portText === '*') ports = [1, 65535];
  else {
    const r = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portText);
    if (!r) throw new AllowListError(`"${text}": port must be a number, a range a-b or *`);
    ports = [Number(r[1]), Number(r[2] ?? r[1])];
    if (ports[0] < 1 || ports[1] > 65535 || ports[0] > ports[1]) throw new AllowListError(`"${text}": port range out of 1-65535`);
  }
  if (host === '*') return { text, host: { kind: 'any' }, ports };
  const slash = host.indexOf('/');
  const ip = slash === -1 ? host : host.slice(0, slash);
  const fam = isIP(ip);
  if (fam !== 0) {
    const list = new BlockList();
    const prefix = slash === -1 ? (fam === 4 ? 32 : 128) : Number(host.slice(slash + 1));
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (fam === 4 ? 32 : 128)) throw new AllowListError(`"${text}": bad prefix length`);
    list.addSubnet(ip, prefix, fam === 4 ? 'ipv4' : 'ipv6');
    return { text, host: { kind: 'net', list }, ports };
  }
  if (!/^[a-z0-9.-]+$/i.test(host)) throw new AllowListError(`"${text}": "${host}" is not an IP, a CIDR block or a host name`);
  return { text, host: { kind: 'name', name: host.toLowerCase() }, ports };
}

export interface ResolvedTarget {
  /** The address to connect to (already checked). */
  readonly address: string;
  readonly port: number;
}

export class AllowList {
  private readonly rules: Rule[];

  constructor(patterns: readonly string[] = DEFAULT_ALLOWED_TARGETS) {
    this.rules = patterns.map(parseRule);
  }

  get patterns(): string[] {
    return this.rules.map((r) => r.text);
  }

  /**
   * Checks a requested "host:port" and resolves it. A host name is allowed if a rule names it,
   * or if the address it resolves to is allowed; the connection then goes to that checked
   * address, so a name cannot be re-resolved elsewhere between check and connect.
   */
  async check(target: string): Promise<ResolvedTarget | { error: string }> {
    let hp;
    try {
      hp = parseHostPort(target);
    } catch (err) {
      return { error: (err as Error).message };
    }
    const inPorts = (r: Rule): boolean => hp.port >= r.ports[0] && hp.port <= r.ports[1];
    const fam = isIP(hp.host);
    let address = hp.host;
    let byName = false;
    if (fam === 0) {
      const name = hp.host.toLowerCase();
      byName = this.rules.some((r) => inPorts(r) && (r.host.kind === 'any' || (r.host.kind === 'name' && r.host.name === name)));
      try {
        address = (await lookup(hp.host)).address;
      } catch {
        return { error: `cannot resolve ${hp.host} on the agent` };
      }
    }
    const addrFam = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    const byAddress = this.rules.some(
      (r) => inPorts(r) && (r.host.kind === 'any' || (r.host.kind === 'net' && r.host.list.check(address, addrFam))),
    );
    if (!byName && !byAddress) return { error: `target ${target} is not allowed by the agent (--allow-target)` };
    return { address, port: hp.port };
  }
}
