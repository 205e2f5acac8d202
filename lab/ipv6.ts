// IPv6 in a built lab (after topology.ts has made the IPv4 side): addresses, default routes,
// forwarding and each IPv6 router's stateful firewall (nat.ts). Addresses skip duplicate address
// detection (nodad): the plan makes them unique, and DAD would hold each one back for a second
// or more. Bridged frames skip ip6tables too, like the IPv4 ones.
import { runOk } from './exec.js';
import type { Lab } from './lab.js';
import { firewall6Ruleset } from './nat.js';
import { ipBatch, sysctl } from './netns.js';

export async function buildIPv6(lab: Lab): Promise<void> {
  const nodes = lab.nodes.filter((n) => n.addresses6.length > 0);
  if (nodes.length === 0) return;
  const routers = nodes.filter((n) => n.router?.lanAddress6 !== undefined);
  await Promise.all(
    [lab.internetNs, ...lab.nodes.filter((n) => n.router).map((r) => r.ns)].map((ns) =>
      sysctl(ns, { 'net.bridge.bridge-nf-call-ip6tables': 0 }).catch(() => undefined),
    ),
  );
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
