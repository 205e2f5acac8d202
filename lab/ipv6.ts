// IPv6 in a built lab (after topology.ts has made the IPv4 side): addresses, default routes,
// forwarding and each IPv6 router's stateful firewall (nat.ts). Addresses skip duplicate address
// detection (nodad): the plan makes them unique, and DAD would hold each one back for a second
// or more. Bridged frames skip ip6tables too, like the IPv4 ones.
import { runOk } from './exec.js';
import type { Lab } from './lab.js';
import { firewall6Ruleset } from './nat.js';
import { ipBatch, sysctl } from './netns.js';

/** Whether the lab has IPv6 anywhere. */
function hasIPv6(lab: Lab): boolean {
  return lab.nodes.some((n) => n.addresses6.length > 0);
}

/**
 * Before any interface exists: no duplicate address detection in the lab's namespaces, for the
 * link-local addresses too. While a router's link-local address is tentative its neighbour
 * discovery misbehaves, and the first packets through it were lost (a STUN answer half a second
 * late, or none) in the first second of a lab's life.
 */
export async function prepareIPv6(lab: Lab): Promise<void> {
  if (!hasIPv6(lab)) return;
  await Promise.all(lab.namespaces.map((ns) => sysctl(ns, { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 })));
}

export async function buildIPv6(lab: Lab): Promise<void> {
  if (!hasIPv6(lab)) return;
  const nodes = lab.nodes.filter((n) => n.addresses6.length > 0);
  const routers = nodes.filter((n) => n.router?.lanAddress6 !== undefined);
  // Neighbour discovery goes to solicited-node multicast groups. A snooping bridge forwards
  // those only to ports it saw an MLD report on, and a host's first reports can go out before
  // its port is in the bridge: then its neighbours cannot find it for a second or two. Bridges
  // that flood multicast, like a small switch, do not have that problem.
  const bridges = [lab.internetNs, ...lab.nodes.filter((n) => n.router).map((r) => r.ns)];
  await Promise.all(bridges.map((ns) => ipBatch(ns, ['link set br0 type bridge mcast_snooping 0'])));
  await Promise.all(bridges.map((ns) => sysctl(ns, { 'net.bridge.bridge-nf-call-ip6tables': 0 }).catch(() => undefined)));
  // Without NAT66 the internet must know where each LAN is: every node on it routes each
  // router's /64 via that router's WAN address, as the routing of an ISP does.
  const lanRoutes = (self: string): string[] =>
    routers.filter((r) => r.name !== self).map((r) => `route add ${r.router!.lanSubnet6} via ${r.addresses6[0]} dev ${lab.node(self).ifName}`);
  await Promise.all(
    nodes.map((n) => {
      const onInternet = n.network === 'internet';
      const gw = onInternet ? undefined : lab.node(n.network).router?.lanAddress6;
      return ipBatch(n.ns, [
        ...n.addresses6.map((a) => `addr add ${a}/64 dev ${n.ifName} nodad`),
        gw ? `route add ::/0 via ${gw} dev ${n.ifName}` : `route add ::/0 dev ${n.ifName}`,
        ...(onInternet ? lanRoutes(n.name) : []),
      ]);
    }),
  );
  await Promise.all(
    routers.map(async (r) => {
      await ipBatch(r.ns, [`addr add ${r.router!.lanAddress6}/64 dev br0 nodad`]);
      await sysctl(r.ns, { 'net.ipv6.conf.all.forwarding': 1 });
      await runOk('ip', ['netns', 'exec', r.ns, 'nft', '-f', '-'], { input: firewall6Ruleset({ kind: r.router!.nat, wanIf: r.ifName, lanIf: 'br0' }) });
    }),
  );
}
