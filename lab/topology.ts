// Building a topology from its description: namespaces, bridges, veths, addresses, routes,
// forwarding and NAT. Steps run in parallel across namespaces (each `ip` call costs a few ms and
// a lab has ten or more namespaces); the lab is registered for cleanup before the first
// namespace exists, so a failure halfway still tears everything down.
import { sweepStale, trackLab } from './cleanup.js';
import { runOk } from './exec.js';
import { Lab } from './lab.js';
import { natRuleset } from './nat.js';
import { startMiniupnpd } from './miniupnpd.js';
import { buildIPv6, prepareIPv6 } from './ipv6.js';
import { newPrefix } from './names.js';
import { addNamespace, addVeth, ipBatch, sysctl } from './netns.js';
import { INTERNET, planTopology, type TopologySpec } from './spec.js';

export interface CreateLabOptions {
  /** Namespace prefix; default a fresh one owned by this process (see names.ts). */
  readonly prefix?: string;
}

/** Builds a topology and returns its Lab. Always pair with `await lab.teardown()` in finally/after. */
export async function createLab(spec: TopologySpec, opts: CreateLabOptions = {}): Promise<Lab> {
  const plan = planTopology(spec);
  // Leftovers from dead runs would only waste memory, but sweeping here means nobody has to.
  await sweepStale().catch(() => undefined);
  const lab = new Lab(opts.prefix ?? newPrefix(), plan);
  trackLab(lab);
  try {
    await build(lab);
  } catch (e) {
    await lab.teardown();
    throw e;
  }
  return lab;
}

const bridgeUp = ['link add br0 type bridge', 'link set br0 up'];

async function build(lab: Lab): Promise<void> {
  await Promise.all(lab.namespaces.map((ns) => addNamespace(ns)));
  await prepareIPv6(lab);

  const routers = lab.nodes.filter((n) => n.router);
  // Bridges: the internet segment, and each router's LAN (several hosts share one L2 segment).
  await ipBatch(lab.internetNs, bridgeUp);
  await Promise.all(
    routers.map((r) =>
      ipBatch(r.ns, [...bridgeUp, `addr add ${r.router?.lanAddress}/${r.router?.lanSubnet.split('/')[1]} dev br0`]),
    ),
  );

  const networkNs = (network: string): string => (network === INTERNET ? lab.internetNs : lab.node(network).ns);
  await Promise.all(lab.nodes.map((n) => addVeth({ ns: n.ns, name: n.ifName }, { ns: networkNs(n.network), name: `p-${n.name}` })));

  // Bridge ports, per network namespace in one batch.
  const ports = new Map<string, string[]>();
  for (const n of lab.nodes) {
    const ns = networkNs(n.network);
    ports.set(ns, [...(ports.get(ns) ?? []), `link set p-${n.name} master br0`, `link set p-${n.name} up`]);
  }
  await Promise.all([...ports].map(([ns, lines]) => ipBatch(ns, lines)));

  // Each node's uplink: addresses, link up, default route. On the internet every address is
  // on-link, and a default route out of the segment keeps any stray packet inside the lab.
  await Promise.all(
    lab.nodes.map((n) => {
      const len = n.network === INTERNET ? 24 : lab.node(n.network).router?.lanSubnet.split('/')[1];
      const gw = n.network === INTERNET ? undefined : lab.node(n.network).router?.lanAddress;
      return ipBatch(n.ns, [
        ...n.addresses.map((a) => `addr add ${a}/${len} dev ${n.ifName}`),
        `link set ${n.ifName} up`,
        // An IPv6-only host has no IPv4 address and no IPv4 route (ipv6.ts gives it its IPv6 ones).
        ...(n.addresses.length === 0 ? [] : [gw ? `route add default via ${gw}` : `route add default dev ${n.ifName}`]),
      ]);
    }),
  );

  // Bridged frames must not go through IP netfilter (br_netfilter is built in and defaults to
  // on): LAN-to-LAN traffic is switched, not NATed, on a real router too.
  await Promise.all(
    [lab.internetNs, ...routers.map((r) => r.ns)].map((ns) =>
      sysctl(ns, { 'net.bridge.bridge-nf-call-iptables': 0 }).catch(() => undefined),
    ),
  );

  await Promise.all(
    routers.map(async (r) => {
      const info = r.router;
      if (!info) return;
      // Hairpinned packets leave by the interface they came in on; ICMP redirects would tell the
      // LAN host to bypass the router, which a NAT router never does.
      await sysctl(r.ns, {
        'net.ipv4.ip_forward': 1,
        'net.ipv4.conf.all.send_redirects': 0,
        'net.ipv4.conf.default.send_redirects': 0,
        'net.ipv4.conf.br0.send_redirects': 0,
      });
      const rules = natRuleset({ kind: info.nat, wanIf: r.ifName, wanAddress: info.wanAddress, lanIf: 'br0', hairpin: info.hairpin, portMapping: info.portMapping });
      await runOk('ip', ['netns', 'exec', r.ns, 'nft', '-f', '-'], { input: rules });
    }),
  );
  await buildIPv6(lab);
  // Port mapping last: miniupnpd asks its STUN responder on the WAN side, which must be up.
  await Promise.all(routers.filter((r) => r.router?.portMapping).map((r) => startMiniupnpd(lab, r.name, r.router!.portMapping!)));
}
