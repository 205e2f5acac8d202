// What netcheck found out about the network a node's socket sits behind. Every field says what it
// means and when it is unknown; `--json` prints this object as it is.
import type { PortMappingReport } from '../portmap/report.js';

/** RFC 4787 behaviour: how a NAT maps, or filters, by the remote endpoint. */
export type NatBehaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown';

export interface ServerReport {
  /** The STUN server probed, as "ip:port". */
  readonly address: string;
  /** Round trip of the first answered request, in ms; null if it never answered. */
  readonly latencyMs: number | null;
  /** Our address as this server saw it; null if it never answered. */
  readonly mapped: string | null;
  /** Why it did not answer ("timeout", "error 420 ...", "no IPv6 socket"), or null when it did. */
  readonly error: string | null;
  /** The server's OTHER-ADDRESS (RFC 5780 support), or null. */
  readonly otherAddress: string | null;
}

export interface NetcheckReport {
  /** Whether any STUN server answered over UDP. False means UDP is blocked (or no server is up). */
  readonly udp: boolean;
  /** Whether an IPv4 STUN server answered. */
  readonly ipv4: boolean;
  /** Whether an IPv6 STUN server answered. */
  readonly ipv6: boolean;
  /** Our public IPv4 address and port as the preferred IPv4 server saw it; null if none answered. */
  readonly globalV4: string | null;
  /** Our public IPv6 address and port; null if no IPv6 server answered. */
  readonly globalV6: string | null;
  /** Every distinct public address the servers reported (a hard NAT shows several). */
  readonly publicAddresses: readonly string[];
  /**
   * Whether servers at different IP addresses saw different mapped addresses (an
   * endpoint-dependent, "hard" NAT). Null when fewer than two server IPs answered.
   */
  readonly mappingVariesByDestIP: boolean | null;
  /** RFC 5780 mapping behaviour; "unknown" unless a server offered OTHER-ADDRESS. */
  readonly mapping: NatBehaviour;
  /** RFC 5780 filtering behaviour; "unknown" unless a server offered OTHER-ADDRESS. */
  readonly filtering: NatBehaviour;
  /**
   * Whether a packet sent to our own public address came back to us (the NAT hairpins). Null
   * when there was no public address to try, or we are not behind a NAT.
   */
  readonly hairpinning: boolean | null;
  /** Whether the public address differs from every local interface address. Null if unknown. */
  readonly behindNat: boolean | null;
  /** The lowest-latency server that answered, as "ip:port"; null if none did. */
  readonly preferredServer: string | null;
  /** The socket's local address and port, as "ip:port", or null. */
  readonly local: string | null;
  readonly servers: readonly ServerReport[];
  /**
   * What the default gateway offers for mapping a port (PCP, NAT-PMP, UPnP IGD) and whether the
   * mapping is trusted. Null when port mapping was not looked at (turned off, or not asked for).
   */
  readonly portMapping: PortMappingReport | null;
  /** How long the check took, in ms. */
  readonly durationMs: number;
}
