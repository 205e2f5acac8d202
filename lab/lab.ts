// The handle tests get for a built topology: where every node lives, running programs inside
// it, router conntrack access, link impairments, and an idempotent teardown.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { removeNamespaces, removeNamespacesSync, untrackLab, type Disposable } from './cleanup.js';
import { runOk, type ExecOptions, type ExecResult } from './exec.js';
import { applyImpairment, clearImpairment, type Impairment, type LinkEnd } from './netem.js';
import { nsExec, nsSpawn } from './netns.js';
import { INTERNET, type Plan, type PlannedNode } from './spec.js';
import type { NatKind } from './nat.js';
import type { PortMappingProtocols } from './spec.js';
import { INTERNET6_SUBNET } from './ipv6-plan.js';

export interface LabRouterInfo {
  readonly nat: NatKind;
  readonly hairpin: boolean;
  /** The router's address on its upstream network (its public address if that is the internet). */
  readonly wanAddress: string;
  /** The router's own address on its LAN: the LAN hosts' default gateway. */
  readonly lanAddress: string;
  readonly lanSubnet: string;
  /** The protocols its miniupnpd answers, or null when it runs none. */
  readonly portMapping: PortMappingProtocols | null;
  /** IPv6 (lan6 routers only): its LAN address (the hosts' IPv6 gateway) and LAN /64. */
  readonly lanAddress6?: string;
  readonly lanSubnet6?: string;
}

export interface LabNode {
  readonly name: string;
  readonly kind: 'host' | 'router';
  /** Network namespace: use with `ip netns exec`. */
  readonly ns: string;
  /** Addresses on its uplink: a host's own addresses; a router's WAN address. */
  readonly addresses: readonly string[];
  /** The first of `addresses` ('' on an IPv6-only host). */
  readonly address: string;
  /** IPv6 addresses on its uplink (none when the topology or its LAN has no IPv6). */
  readonly addresses6: readonly string[];
  /** "internet" or the name of the router whose LAN it sits on. */
  readonly network: string;
  /** Uplink interface inside `ns` ("eth0" on hosts, "wan" on routers). */
  readonly ifName: string;
  readonly router?: LabRouterInfo;
}

/** A program running in a lab namespace. The lab kills it on teardown. */
export type LabProcess = ChildProcess;

export type LinkDirection = 'both' | 'up' | 'down';

export class Lab implements Disposable {
  private readonly byName = new Map<string, LabNode>();
  private readonly processes = new Set<ChildProcess>();
  private tearingDown: Promise<void> | undefined;

  /** Namespace of the internet segment (its bridge is "br0"). */
  readonly internetNs: string;

  constructor(
    /** Every namespace of this lab starts with this (see names.ts). */
    readonly prefix: string,
    plan: Plan,
  ) {
    this.internetNs = `${prefix}inet`;
    for (const p of plan.nodes) this.byName.set(p.name, this.toNode(p));
  }

  private toNode(p: PlannedNode): LabNode {
    const base = {
      name: p.name,
      kind: p.kind,
      ns: `${this.prefix}${p.name}`,
      addresses: p.addresses,
      address: p.addresses[0] ?? '',
      addresses6: p.ipv6?.addresses ?? [],
      network: p.uplink.network,
      ifName: p.uplink.ifName,
    };
    if (!p.router) return base;
    const r = p.router;
    const v6 = p.ipv6?.lanAddress && p.ipv6.lanSubnet ? { lanAddress6: p.ipv6.lanAddress, lanSubnet6: p.ipv6.lanSubnet } : {};
    return { ...base, router: { nat: r.nat, hairpin: r.hairpin, portMapping: r.portMapping, wanAddress: base.address, lanAddress: r.lanAddress, lanSubnet: r.lanSubnet, ...v6 } };
  }

  /** Every namespace this lab owns, internet first. */
  get namespaces(): string[] {
    return [this.internetNs, ...[...this.byName.values()].map((n) => n.ns)];
  }

  get nodes(): LabNode[] {
    return [...this.byName.values()];
  }

  node(name: string): LabNode {
    const n = this.byName.get(name);
    if (!n) throw new Error(`no lab node "${name}" (have: ${[...this.byName.keys()].join(', ')})`);
    return n;
  }

  router(name: string): LabNode & { router: LabRouterInfo } {
    const n = this.node(name);
    if (!n.router) throw new Error(`lab node "${name}" is a host, not a router`);
    return n as LabNode & { router: LabRouterInfo };
  }

  /** Namespace of the network a node sits on: the internet namespace or its router's. */
  private networkNs(n: LabNode): string {
    return n.network === INTERNET ? this.internetNs : this.node(n.network).ns;
  }

  /**
   * The address the internet sees for traffic from `name`: the WAN address of the outermost
   * router above it (through any number of NAT layers), or its own when it is on the internet.
   */
  publicAddress(name: string): string {
    let n = this.node(name);
    let addr = n.address;
    while (n.network !== INTERNET) {
      n = this.node(n.network);
      addr = n.address;
    }
    return addr;
  }

  private live(): void {
    if (this.tearingDown) throw new Error(`lab ${this.prefix} has been torn down`);
  }

  /** Runs a program to completion inside a node's namespace. */
  exec(name: string, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    this.live();
    return nsExec(this.node(name).ns, cmd, args, opts);
  }

  /** Starts a long-running program inside a node's namespace; killed on teardown. */
  spawn(name: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): LabProcess {
    this.live();
    const child = nsSpawn(this.node(name).ns, cmd, args, opts);
    this.processes.add(child);
    child.on('exit', () => this.processes.delete(child));
    return child;
  }

  /** The router's conntrack table, one `conntrack -L` line per entry. */
  async conntrackList(router: string, proto?: 'udp' | 'tcp'): Promise<string[]> {
    this.live();
    const out = await runOk('ip', ['netns', 'exec', this.router(router).ns, 'conntrack', '-L', ...(proto ? ['-p', proto] : [])]);
    return out.split('\n').filter((l) => l.trim() !== '');
  }

  /** Forgets every NAT mapping of the router (`conntrack -F`): what a router reboot does. */
  async conntrackFlush(router: string): Promise<void> {
    this.live();
    await runOk('ip', ['netns', 'exec', this.router(router).ns, 'conntrack', '-F']);
  }

  private linkEnds(name: string): { up: LinkEnd; down: LinkEnd } {
    const n = this.node(name);
    // "up" is the node's egress towards its network; "down" the network's egress towards it.
    const up = { ns: n.ns, dev: n.ifName };
    return { up, down: { ns: this.networkNs(n), dev: `p-${n.name}`, peer: up } };
  }

  /** Adds delay/loss to the link between a node and its network, in one or both directions. */
  async impair(name: string, imp: Impairment, direction: LinkDirection = 'both'): Promise<void> {
    this.live();
    const ends = this.linkEnds(name);
    if (direction !== 'down') await applyImpairment(ends.up, imp);
    if (direction !== 'up') await applyImpairment(ends.down, imp);
  }

  async clearImpairment(name: string): Promise<void> {
    this.live();
    const ends = this.linkEnds(name);
    await Promise.all([clearImpairment(ends.up), clearImpairment(ends.down)]);
  }

  /** A human-readable map of the lab: namespaces, addresses, NAT kinds. */
  describe(): string {
    const v6 = this.nodes.some((n) => n.addresses6.length > 0) ? ` and ${INTERNET6_SUBNET}` : '';
    const lines = [`lab ${this.prefix}  (internet: ${this.internetNs}, 203.0.113.0/24${v6})`];
    const walk = (network: string, depth: number): void => {
      for (const n of this.nodes.filter((x) => x.network === network)) {
        const pad = '  '.repeat(depth);
        if (n.router) {
          const pm = n.router.portMapping;
          const hp = (n.router.hairpin ? ', hairpin' : '') + (pm ? `, port mapping: ${Object.entries(pm).filter(([, on]) => on).map(([k]) => k).join('+') || 'none'}` : '');
          const v6 = n.router.lanSubnet6 ? `  wan6=${n.addresses6.join(',')}  lan6=${n.router.lanSubnet6} (stateful firewall, no NAT66)` : '';
          lines.push(`${pad}router ${n.name}  ns=${n.ns}  wan=${n.address}  lan=${n.router.lanSubnet} (gw ${n.router.lanAddress})  nat=${n.router.nat}${hp}${v6}`);
          walk(n.name, depth + 1);
        } else {
          const v6 = n.addresses6.length > 0 ? `  addr6=${n.addresses6.join(',')}` : '';
          lines.push(`${pad}host   ${n.name}  ns=${n.ns}  addr=${n.addresses.join(',') || '(IPv6 only)'}${v6}  public=${this.publicAddress(n.name) || '-'}`);
        }
      }
    };
    walk(INTERNET, 1);
    return lines.join('\n');
  }

  /** Kills every program, deletes every namespace. Safe to call any number of times. */
  teardown(): Promise<void> {
    this.tearingDown ??= (async () => {
      const exits = [...this.processes].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              p.kill('SIGKILL');
              resolve();
            }, 500);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      );
      await Promise.all(exits);
      await removeNamespaces(this.namespaces);
      untrackLab(this);
    })();
    return this.tearingDown;
  }

  teardownSync(): void {
    for (const p of this.processes) p.kill('SIGKILL');
    removeNamespacesSync(this.namespaces);
    this.tearingDown ??= Promise.resolve();
    untrackLab(this);
  }
}
