// Router NAT behaviours as nftables rule sets, one table per router namespace. Each kind is
// named after its RFC 4787 mapping and filtering behaviour, and every router also gets the
// stateful firewall of a real home router.
//
// Why the firewall matters: without it, an unsolicited inbound packet (a peer's early probe)
// creates a conntrack entry that gets confirmed when the router delivers or answers it; the
// LAN host's later outbound packet to that peer then clashes with that entry and nf_nat moves
// the mapping to another port, which no real router does. With `policy drop` on forward and
// input the early probe is dropped before confirmation, so its entry never exists.
//
// Inbound forwarding (full cone, address-dependent filtering, hairpinning) relies on
// MASQUERADE's port preservation: a LAN host's socket port P appears as WANADDR:P, so a map
// learnt from outbound packets, "public port P -> LAN host", says where inbound for P goes.
// If two LAN hosts use the same source port, nf_nat moves the second one and the map is wrong
// for it; tests use ephemeral ports, which makes that unlikely.

export const NAT_KINDS = ['easy', 'full-cone', 'address-dependent', 'hard', 'udp-blocked'] as const;
export type NatKind = (typeof NAT_KINDS)[number];

/** RFC 4787 names, as coturn's turnutils_natdiscovery prints them. */
export type MappingBehaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';
export type FilteringBehaviour = MappingBehaviour;

export interface NatBehaviour {
  /** RFC 4787 section 4.1 mapping; undefined when UDP does not leave at all. */
  readonly mapping: MappingBehaviour | undefined;
  /** RFC 4787 section 5 filtering; undefined when UDP does not leave at all. */
  readonly filtering: FilteringBehaviour | undefined;
  readonly summary: string;
}

/** What each kind must measure as; the lab tests assert exactly this against coturn. */
export const NAT_BEHAVIOUR: Readonly<Record<NatKind, NatBehaviour>> = {
  easy: {
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    summary: 'MASQUERADE: EIM with port preservation, address-and-port-dependent filtering ("port-restricted cone")',
  },
  'full-cone': {
    mapping: 'endpoint-independent',
    filtering: 'endpoint-independent',
    summary: 'EIM; inbound UDP from anyone to a mapped port is forwarded to its LAN host ("full cone")',
  },
  'address-dependent': {
    mapping: 'endpoint-independent',
    filtering: 'address-dependent',
    summary: 'EIM; inbound allowed from any port of an address the LAN host sent to ("restricted cone")',
  },
  hard: {
    mapping: 'address-and-port-dependent',
    filtering: 'address-and-port-dependent',
    summary: 'MASQUERADE fully-random: a new public port per destination ("symmetric")',
  },
  'udp-blocked': {
    mapping: undefined,
    filtering: undefined,
    summary: 'outbound UDP dropped; only TCP (masqueraded) leaves the network',
  },
};

export interface RulesetOptions {
  readonly kind: NatKind;
  /** Upstream interface (towards the internet) and its address, the router's public address. */
  readonly wanIf: string;
  readonly wanAddress: string;
  /** LAN bridge interface. */
  readonly lanIf: string;
  /**
   * Hairpinning (RFC 4787 REQ-9): a LAN host sending to WANADDR:P reaches the LAN host whose
   * mapping that is, and sees the sender's public WANADDR:P' as the source.
   */
  readonly hairpin: boolean;
  /**
   * miniupnpd runs on the router (lab/miniupnpd.ts): its mappings are DNAT rules in a table of
   * its own, which this table's forward policy must let through. PCP and NAT-PMP share UDP 5351
   * and miniupnpd switches them only together, so the one turned off is dropped here by its
   * version byte (0 NAT-PMP, 2 PCP): to a client that router simply does not speak it.
   */
  readonly portMapping?: { readonly pcp: boolean; readonly natpmp: boolean } | null;
}

/**
 * The router itself: nothing unsolicited from upstream (no open ports on a home router). ICMP
 * is let in (ICMPv6 carries neighbour discovery, without which IPv6 does not work at all).
 */
function inputChain(lan: string, icmp: 'icmp' | 'ipv6-icmp', extra: readonly string[] = []): string[] {
  return [
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    iif "lo" accept',
    ...extra,
    `    iifname ${lan} accept`,
    `    meta l4proto ${icmp} accept`,
    '  }',
  ];
}

/** The nft script (for `nft -f -`) that makes a router behave as `kind`. */
export function natRuleset(o: RulesetOptions): string {
  const wan = JSON.stringify(o.wanIf);
  const lan = JSON.stringify(o.lanIf);
  const learnPorts = o.kind === 'full-cone' || o.hairpin;
  const learnAdf = o.kind === 'address-dependent';
  const lines: string[] = ['table ip lab {'];

  // Maps learnt from outbound UDP (see the header comment); entries expire like a UDP mapping.
  if (learnPorts) {
    lines.push('  map pubport { type inet_service : ipv4_addr; flags dynamic,timeout; timeout 5m; }');
  }
  if (learnAdf) {
    // Keyed by (remote address, public port): any port of a contacted address may come in.
    lines.push('  map adf { type ipv4_addr . inet_service : ipv4_addr; flags dynamic,timeout; timeout 5m; }');
  }

  lines.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;');
  if (o.kind === 'full-cone') {
    // Endpoint-independent filtering: anyone may send to a mapped port.
    lines.push(`    iifname ${wan} udp dport @pubport dnat to udp dport map @pubport`);
  }
  if (learnAdf) {
    // Address-dependent filtering: only addresses this port has sent to, from any of their ports.
    lines.push(`    iifname ${wan} ip saddr . udp dport @adf dnat to ip saddr . udp dport map @adf`);
  }
  if (o.hairpin) {
    // A LAN host sending to our public address: turn it around to the owner of that port.
    lines.push(`    iifname ${lan} ip daddr ${o.wanAddress} udp dport @pubport dnat to udp dport map @pubport`);
  }
  lines.push('  }');

  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  if (o.kind === 'hard') {
    // fully-random: every new flow (new destination) gets a random public port = EDM.
    lines.push(`    oifname ${wan} masquerade random,fully-random`);
  } else {
    // Plain MASQUERADE keeps the source port when it is free and reuses the mapping for every
    // destination: endpoint-independent mapping with port preservation.
    lines.push(`    oifname ${wan} masquerade`);
  }
  if (o.hairpin) {
    // The hairpinned packet must look as if it came from the sender's public mapping, not
    // from its private address, or the receiver's NAT state (and its peer logic) would not match.
    lines.push(`    iifname ${lan} oifname ${lan} ct status dnat snat to ${o.wanAddress}`);
  }
  lines.push('  }');

  lines.push('  chain forward {', '    type filter hook forward priority filter; policy drop;');
  // Learn before the established shortcut so that every outbound packet refreshes the timeout.
  if (learnPorts) lines.push(`    iifname ${lan} oifname ${wan} meta l4proto udp update @pubport { udp sport : ip saddr }`);
  if (learnAdf) lines.push(`    iifname ${lan} oifname ${wan} meta l4proto udp update @adf { ip daddr . udp sport : ip saddr }`);
  lines.push('    ct state established,related accept', '    ct state invalid drop');
  if (o.kind === 'udp-blocked') lines.push(`    iifname ${lan} meta l4proto udp drop`);
  lines.push(`    iifname ${lan} oifname ${wan} accept`);
  // Inbound that one of our own DNAT rules chose to forward (full cone, ADF, hairpin).
  if (learnPorts || learnAdf || o.portMapping) lines.push('    ct status dnat accept');
  lines.push('  }');

  // The router itself: nothing unsolicited from upstream (no open ports on a home router).
  // miniupnpd serves NAT-PMP (version 0) and PCP (version 2) on one port: each is switched off by
  // dropping its version byte.
  lines.push(
    ...inputChain(lan, 'icmp', [
      ...(o.portMapping && !o.portMapping.natpmp ? [`    iifname ${lan} udp dport 5351 @th,64,8 0 drop`] : []),
      ...(o.portMapping && !o.portMapping.pcp ? [`    iifname ${lan} udp dport 5351 @th,64,8 2 drop`] : []),
    ]),
  );
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * The IPv6 side of a router (`lan6`): no NAT66, only the stateful firewall of a home router.
 * What a LAN host sent to first, and replies, get in (conntrack established/related); nothing
 * unsolicited does. So two hosts behind such routers open the way for each other by sending at
 * the same time, as through a port-restricted NAT, except that the address never changes.
 * ICMPv6 errors that belong to a flow arrive as related; neighbour discovery reaches the router.
 */
export function firewall6Ruleset(o: { readonly kind: NatKind; readonly wanIf: string; readonly lanIf: string }): string {
  const wan = JSON.stringify(o.wanIf);
  const lan = JSON.stringify(o.lanIf);
  const lines = [
    'table ip6 lab6 {',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept',
    '    ct state invalid drop',
    ...(o.kind === 'udp-blocked' ? [`    iifname ${lan} meta l4proto udp drop`] : []),
    `    iifname ${lan} oifname ${wan} accept`,
    '  }',
    ...inputChain(lan, 'ipv6-icmp'),
    '}',
  ];
  return lines.join('\n') + '\n';
}
