// Debian's miniupnpd (the nftables build) on a lab router: NAT-PMP, PCP and UPnP IGD, each
// switchable. What it needs, found by experiment (LAB-NOTES.md):
//   - its nft table and chains, which its packaged helper scripts would make but cannot (they
//     source a functions file Debian does not ship): one `inet` table holding a filter chain on
//     the forward hook (accepting, the lab's own table does the filtering) and the nat chains;
//   - an external address it accepts: it refuses the lab's TEST-NET WAN address, except when it
//     learns it by STUN (`ext_perform_stun`), which needs RFC 5780 answers from an alternate
//     address the router's firewall lets in. So a Traverse STUN server runs on the router itself,
//     on its WAN address with its loopback as the alternate: the least intrusive way, since the
//     lab's addresses and miniupnpd's code stay as they are;
//   - PCP and NAT-PMP come and go together (enable_natpmp); the lab's ruleset drops the one
//     turned off by its version byte (nat.ts).
// Everything lives in the router's namespace and a temporary directory; teardown kills it.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './exec.js';
import type { Lab, LabProcess } from './lab.js';
import type { PortMappingProtocols } from './spec.js';
import { BIN } from '../test/helpers/cli.js';
import { waitForUdpListeners } from './wait-listening.js';

/** The router-local STUN responder miniupnpd asks for its external address. */
const ROUTER_STUN_PORT = 3490;
/** miniupnpd's HTTP port for UPnP descriptions and SOAP (fixed: one per namespace). */
export const MINIUPNPD_HTTP_PORT = 5000;
const TABLE = 'miniupnpd';

function nftTable(): string {
  return [
    `table inet ${TABLE} {`,
    '  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }',
    '  chain miniupnpd { }',
    '  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }',
    '  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }',
    '  chain prerouting_miniupnpd { }',
    '  chain postrouting_miniupnpd { }',
    '}',
    '',
  ].join('\n');
}

function config(o: { wanIf: string; wanAddress: string; lanIf: string; lanSubnet: string; protocols: PortMappingProtocols; dir: string }): string {
  return [
    `ext_ifname=${o.wanIf}`,
    `listening_ip=${o.lanIf}`,
    `http_port=${MINIUPNPD_HTTP_PORT}`,
    `enable_natpmp=${o.protocols.pcp || o.protocols.natpmp ? 'yes' : 'no'}`,
    `enable_upnp=${o.protocols.upnp ? 'yes' : 'no'}`,
    'secure_mode=yes',
    'ext_perform_stun=yes',
    `ext_stun_host=${o.wanAddress}`,
    `ext_stun_port=${ROUTER_STUN_PORT}`,
    `upnp_table_name=${TABLE}`,
    `upnp_nat_table_name=${TABLE}`,
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    `lease_file=${join(o.dir, 'leases')}`,
    'system_uptime=no',
    'min_lifetime=120',
    'max_lifetime=86400',
    `uuid=${randomUUID()}`,
    `allow 1024-65535 ${o.lanSubnet} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
}

/**
 * Starts miniupnpd on a router with the given protocols; resolves once it serves (its log says
 * port forwarding is enabled, and its sockets are bound).
 */
export async function startMiniupnpd(lab: Lab, routerName: string, protocols: PortMappingProtocols): Promise<LabProcess> {
  const r = lab.router(routerName);
  const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-miniupnpd-'));
  await runOk('ip', ['netns', 'exec', r.ns, 'nft', '-f', '-'], { input: nftTable() });
  const stun = lab.spawn(routerName, process.execPath, [
    BIN, 'stun-server', '--listen', `${r.address}:${ROUTER_STUN_PORT}`, '--alt-address', '127.0.0.1', '--rate-limit', '0',
  ]);
  await waitForUdpListeners(lab, routerName, stun, [`${r.address}:${ROUTER_STUN_PORT}`, `127.0.0.1:${ROUTER_STUN_PORT + 1}`], 'router STUN responder', 10_000);
  const conf = join(dir, 'miniupnpd.conf');
  writeFileSync(conf, config({ wanIf: r.ifName, wanAddress: r.address, lanIf: 'br0', lanSubnet: r.router.lanSubnet, protocols, dir }));
  const child = await runDaemon(lab, routerName, conf, dir);
  daemons.set(r.ns, { child, conf, dir });
  return child;
}

/** The running daemons by router namespace, for restartMiniupnpd. */
const daemons = new Map<string, { child: LabProcess; conf: string; dir: string }>();

async function runDaemon(lab: Lab, routerName: string, conf: string, dir: string): Promise<LabProcess> {
  const child = lab.spawn(routerName, '/usr/sbin/miniupnpd', ['-f', conf, '-d', '-P', join(dir, 'miniupnpd.pid')]);
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => done(new Error(`miniupnpd on ${routerName} did not enable port forwarding within 10 s:\n${log}`)), 10_000);
    const onData = (d: Buffer): void => {
      if (log.length < 20_000) log += d.toString();
      if (/Port forwarding is now enabled/.test(log)) done(null);
    };
    const onExit = (code: number | null): void => done(new Error(`miniupnpd on ${routerName} exited (${code}):\n${log}`));
    function done(err: Error | null): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  return child;
}

/**
 * A router restart as a home router does one: miniupnpd dies without cleaning up (SIGKILL), the
 * router comes back with none of its mappings (the rules are deleted), and miniupnpd starts again
 * with the same configuration (a new epoch). Resolves once it serves again.
 */
export async function restartMiniupnpd(lab: Lab, routerName: string): Promise<void> {
  const ns = lab.router(routerName).ns;
  const d = daemons.get(ns);
  if (!d) throw new Error(`miniupnpd does not run on ${routerName}`);
  if (d.child.exitCode === null && d.child.signalCode === null) {
    const exited = new Promise((r) => d.child.once('exit', r));
    d.child.kill('SIGKILL');
    await exited;
  }
  // Its lease file would bring the mappings back: a rebooted router has lost it with its RAM.
  rmSync(join(d.dir, 'leases'), { force: true });
  for (const chain of ['miniupnpd', 'prerouting_miniupnpd', 'postrouting_miniupnpd']) await runOk('ip', ['netns', 'exec', ns, 'nft', 'flush', 'chain', 'inet', TABLE, chain]);
  daemons.set(ns, { ...d, child: await runDaemon(lab, routerName, d.conf, d.dir) });
}

/** The UDP mappings miniupnpd holds now, as "external port -> internal ip:port", from its nft chain. */
export async function miniupnpdMappings(lab: Lab, routerName: string): Promise<{ externalPort: number; internal: string }[]> {
  const out = await runOk('ip', ['netns', 'exec', lab.router(routerName).ns, 'nft', 'list', 'chain', 'inet', TABLE, 'prerouting_miniupnpd']);
  const found: { externalPort: number; internal: string }[] = [];
  // e.g. `iif "wan" @nh,72,8 0x11 th dport 4000 dnat ip to 192.168.1.2:4000` (0x11: UDP)
  for (const m of out.matchAll(/@nh,72,8 0x11 th dport (\d+) dnat (?:ip )?to ([\d.]+:\d+)/g)) found.push({ externalPort: Number(m[1]), internal: m[2]! });
  return found;
}

/**
 * For `describe(..., { skip: await miniupnpdSkip() })`: false when miniupnpd (nftables build) is
 * installed; the reason otherwise, or a throw under TRAVERSE_REQUIRE_LAB=1.
 */
export async function miniupnpdSkip(): Promise<string | false> {
  if (existsSync('/usr/sbin/miniupnpd')) return false;
  const reason = 'miniupnpd is not installed (Debian: miniupnpd-nftables)';
  if (process.env.TRAVERSE_REQUIRE_LAB === '1') throw new Error(`TRAVERSE_REQUIRE_LAB=1 but ${reason}`);
  return reason;
}
