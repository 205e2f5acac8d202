// The report in plain language: what this network means for direct connections, and what an
// operator can change. Pure, so the wording is tested.
import type { NetcheckReport } from './report.js';
import { isHardMapping } from './classify.js';

export interface Diagnosis {
  /** One line: "direct connections: likely" / "unlikely" / "impossible". */
  readonly verdict: string;
  /** Sentences, each about one finding and what to do about it. */
  readonly findings: readonly string[];
}

/** What was learned besides the report, to tell a STUN server that is down from blocked UDP. */
export interface DiagnosisContext {
  /** Servers that did not answer over UDP: whether each answered a Binding over TCP. */
  readonly stunOverTcp?: ReadonlyMap<string, boolean>;
}

export function diagnose(r: NetcheckReport, context: DiagnosisContext = {}): Diagnosis {
  const findings: string[] = [];
  if (r.servers.length === 0) {
    return {
      verdict: 'direct connections: unknown (STUN is disabled)',
      findings: ['No STUN server was probed, so nothing is known about this network. Peers can still connect over local addresses, or through the relay.'],
    };
  }
  if (!r.udp) {
    const overTcp = r.servers.filter((s) => context.stunOverTcp?.get(s.address) === true).map((s) => s.address);
    const relay = 'Traffic will go through the relay over the coordination server (TCP/WebSocket), which works but is slower.';
    // A server that answers over TCP is up: its silence over UDP is this network's doing. Several
    // servers all silent are unlikely to be all down. One silent server may just be down.
    if (overTcp.length > 0 || r.servers.length > 1) {
      return {
        verdict: 'direct connections: impossible from this network (UDP is blocked)',
        findings: [
          overTcp.length > 0
            ? `${overTcp.join(', ')} answered over TCP but not over UDP: the server is up, and outbound UDP is blocked here.`
            : `None of the ${r.servers.length} STUN servers answered over UDP: outbound UDP is most likely blocked here (they are unlikely to be all down).`,
          relay,
          'To fix: allow outbound UDP from this machine (at least to the STUN servers and to peers).',
        ],
      };
    }
    const tried = context.stunOverTcp?.has(r.servers[0]!.address) ?? false;
    return {
      verdict: 'direct connections: unknown (the only STUN server did not answer)',
      findings: [
        `${r.servers[0]!.address} did not answer over UDP${tried ? ' nor over TCP' : ''}: that server may be down or unreachable, or outbound UDP may be blocked here.`,
        'To tell which: check that the server runs, or add a second STUN server (--stun HOST:PORT, repeatable).',
        `If UDP is blocked, ${relay.charAt(0).toLowerCase()}${relay.slice(1)}`,
      ],
    };
  }
  // Only IPv6 answered: the IPv4 NAT findings below would describe nothing.
  if (!r.ipv4 && r.ipv6) return ipv6Only(r);
  const failed = r.servers.filter((s) => s.error !== null);
  if (failed.length > 0) {
    findings.push(`${failed.length} of ${r.servers.length} STUN server(s) did not answer: ${failed.map((s) => `${s.address} (${s.error})`).join(', ')}.`);
  }
  if (r.behindNat === false) {
    findings.push(`This machine has a public address (${r.globalV4 ?? r.globalV6}); there is no NAT in front of this socket. Direct connections are easy unless a firewall filters inbound UDP.`);
  }

  const hard = isHardMapping(r);
  const pm = r.portMapping;
  const mappedOk = pm?.mapping != null && pm.trusted !== false;
  if (hard) {
    findings.push(
      'Endpoint-dependent mapping ("hard NAT"): the public port changes with each destination, so peers cannot learn it from a STUN server. ' +
        (mappedOk
          ? 'The port your router mapped for this machine (below) stands in for it.'
          : 'A direct connection needs the other side to have an easy NAT (or none); otherwise traffic will be relayed. ' +
            'To fix: forward a fixed UDP port to this machine on the router, or use a NAT with endpoint-independent mapping.'),
    );
  } else if (r.mapping === 'endpoint-independent') {
    findings.push('Endpoint-independent mapping ("easy NAT"): peers can reach this machine at the address the STUN server saw, once its filter lets them in.');
  } else if (r.behindNat !== false) {
    findings.push(
      'Mapping behaviour unknown: no STUN server offered RFC 5780 (OTHER-ADDRESS), and fewer than two server addresses answered. ' +
        'Add a second STUN server, or one run with --alt-address, to find out.',
    );
  }

  switch (r.filtering) {
    case 'endpoint-independent':
      findings.push('Endpoint-independent filtering: anyone may send to the mapped address, so the other side can always reach this one directly.');
      break;
    case 'address-dependent':
      findings.push('Address-dependent filtering: packets get in from any port of an address this machine has sent to; hole punching opens it.');
      break;
    case 'address-and-port-dependent':
      findings.push(
        'Address-and-port-dependent filtering ("port-restricted"): only the exact address and port this machine sent to may answer. ' +
          'Hole punching works when both sides send at once and the other side maps endpoint-independently.',
      );
      break;
    case 'unknown':
      break;
  }

  if (pm?.mapping && mappedOk) {
    findings.push(
      `Your router opened a port (${pm.mapping.protocol.toUpperCase().replace('NATPMP', 'NAT-PMP').replace('UPNP', 'UPnP')}, ${pm.mapping.external}): ` +
        'direct connections are possible even with peers behind hard NATs.',
    );
  } else if (pm?.mapping) {
    findings.push(
      `Your router mapped a port (${pm.mapping.external}), but it cannot be trusted: ${pm.untrustedReason}. ` +
        'Peers are still offered it, last; connections rely on hole punching as if there were no mapping.',
    );
  } else if (pm && hard) {
    findings.push('The router maps no port (PCP, NAT-PMP and UPnP IGD did not): turning one of them on would let peers behind hard NATs connect directly.');
  }

  if (r.hairpinning === false) {
    findings.push(
      'No hairpinning: this NAT does not loop packets sent to its own public address back inside. Peers behind the same NAT ' +
        '(for example a VPN client and a cluster behind one corporate NAT) cannot use their public addresses to reach each other. ' +
        'To fix: run an internal STUN server on the inside network and publish it to peers (traverse server --stun), so they find each other by inside addresses.',
    );
  } else if (r.hairpinning === true) {
    findings.push('Hairpinning works: peers behind this same NAT can reach each other through its public address.');
  }

  findings.push(...ipv6Findings(r));

  let verdict: string;
  if (r.behindNat === false) verdict = 'direct connections: likely';
  else if (mappedOk) verdict = 'direct connections: likely (the router maps a port for this machine)';
  else if (hard && r.filtering !== 'endpoint-independent' && r.ipv6) verdict = 'direct connections: likely with peers that have IPv6; over IPv4 only with peers behind easy NATs';
  else if (hard && r.filtering !== 'endpoint-independent') verdict = 'direct connections: only with peers behind easy NATs; otherwise relayed';
  else if (hard) verdict = 'direct connections: likely with most peers (inbound filtering is open)';
  else if (r.mapping === 'endpoint-independent') verdict = 'direct connections: likely';
  else verdict = 'direct connections: possible (NAT behaviour partly unknown)';
  return { verdict, findings };
}

const IPV6_WORKS = (addr: string | null): string =>
  `IPv6 works here (${addr}): on IPv6 there is no NAT to cross, at most a stateful firewall that both sides open by sending to each other at once, ` +
  'so peers that have IPv6 too can connect directly even where IPv4 cannot.';

/** What the IPv6 probes say, next to the IPv4 findings. */
function ipv6Findings(r: NetcheckReport): string[] {
  if (r.ipv6) return [IPV6_WORKS(r.globalV6)];
  const v6Servers = r.servers.filter((s) => s.address.startsWith('['));
  if (v6Servers.length === 0) return [];
  return [`No IPv6 STUN server answered (${v6Servers.map((s) => `${s.address}: ${s.error}`).join(', ')}): this network has no IPv6, or blocks it, so only IPv4 paths are possible.`];
}

/** A network where only IPv6 answered. */
function ipv6Only(r: NetcheckReport): Diagnosis {
  const v4Servers = r.servers.filter((s) => !s.address.startsWith('['));
  return {
    verdict: 'direct connections: likely with peers that have IPv6; peers with only IPv4 are reached through the relay',
    findings: [
      IPV6_WORKS(r.globalV6),
      v4Servers.length > 0
        ? `No IPv4 STUN server answered (${v4Servers.map((s) => s.address).join(', ')}): this machine has no IPv4 path out, so IPv4-only peers can be reached only through the relay.`
        : 'No IPv4 STUN server was probed: whether IPv4 works here is unknown.',
    ],
  };
}
