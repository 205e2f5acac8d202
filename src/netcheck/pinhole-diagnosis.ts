// What the diagnosis says about the IPv6 pinhole (a PCP MAP for our IPv6 address and port).
import type { NetcheckReport } from './report.js';

/** One finding when PCP opened the IPv6 firewall; nothing otherwise (most routers do not offer it). */
export function pinholeFindings(r: NetcheckReport): string[] {
  const p = r.portMapping?.ipv6Pinhole;
  if (!p?.opened) return [];
  return [
    `Your router opened its IPv6 firewall for ${p.endpoint} when asked (a PCP pinhole): a node here keeps one open for its port, ` +
      'so peers can reach it over IPv6 without it sending to them first, as through a full-cone NAT.',
  ];
}
