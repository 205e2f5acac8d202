// Link impairments: added latency and loss on one interface's egress. `tc netem` does both when
// the kernel has sch_netem. Some kernels (this project's CI VM among them) are built without it:
// - loss then falls back to an nftables netdev egress chain that drops a random share of packets;
// - delay falls back to NFQUEUE: an iptables rule in the link end's namespace hands the link's
//   packets to tools/nfqdelay (a small C program, built with gcc at first use), which gives each
//   its ACCEPT verdict after the delay. nftables' own `queue` statement needs CONFIG_NFT_QUEUE,
//   which such kernels may lack too, so the rule is iptables' NFQUEUE target (xtables, through
//   nft_compat with iptables-nft). NFQUEUE is per network namespace, so the helper runs inside it.
// Where neither works, delay is refused with ImpairmentUnsupportedError saying why.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk } from './exec.js';

export interface Impairment {
  /** One-way delay added on this side's egress, in ms. */
  readonly delayMs?: number;
  readonly jitterMs?: number;
  /** Share of packets dropped on this side's egress, 0-100. */
  readonly lossPercent?: number;
}

export interface LinkEnd {
  readonly ns: string;
  readonly dev: string;
  /**
   * The other end of the same link. The NFQUEUE delay uses it when `dev` is a bridge port
   * (bridged frames skip iptables' POSTROUTING): it then delays at the peer's ingress instead,
   * which adds the same latency to the same direction of the link.
   */
  readonly peer?: LinkEnd;
}

export class ImpairmentUnsupportedError extends Error {
  override readonly name = 'ImpairmentUnsupportedError';
}

let netemProbe: Promise<boolean> | undefined;

/** Whether `tc qdisc ... netem` works here (probed once, on the given namespace's loopback). */
export function netemAvailable(ns: string): Promise<boolean> {
  netemProbe ??= (async () => {
    const add = await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '0ms']);
    if (add.code !== 0) return false;
    await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'lo', 'root']);
    return true;
  })();
  return netemProbe;
}

function lossTable(dev: string): string {
  return `lab_loss_${dev.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/** Applies (replacing any earlier one) an impairment to the egress of one link end. */
export async function applyImpairment(end: LinkEnd, imp: Impairment): Promise<void> {
  await clearImpairment(end);
  const delay = imp.delayMs ?? 0;
  const loss = imp.lossPercent ?? 0;
  if (loss < 0 || loss > 100) throw new RangeError(`lossPercent ${loss} is not between 0 and 100`);
  if (delay === 0 && loss === 0) return;
  if (await netemAvailable(end.ns)) {
    const args = ['qdisc', 'replace', 'dev', end.dev, 'root', 'netem'];
    if (delay > 0) args.push('delay', `${delay}ms`, ...(imp.jitterMs ? [`${imp.jitterMs}ms`] : []));
    if (loss > 0) args.push('loss', `${loss}%`);
    await runOk('ip', ['netns', 'exec', end.ns, 'tc', ...args]);
    return;
  }
  if (delay > 0) await startNfqDelay(end, delay, imp.jitterMs ?? 0);
  if (loss === 0) return;
  // numgen gives 0..9999 uniformly; dropping below loss*100 drops loss% of packets.
  const script = [
    `table netdev ${lossTable(end.dev)} {`,
    '  chain egress {',
    `    type filter hook egress device ${JSON.stringify(end.dev)} priority filter; policy accept;`,
    loss >= 100 ? '    drop' : `    numgen random mod 10000 < ${Math.round(loss * 100)} drop`,
    '  }',
    '}',
  ].join('\n');
  await runOk('ip', ['netns', 'exec', end.ns, 'nft', '-f', '-'], { input: script + '\n' });
}

/** Removes any impairment from a link end (netem qdisc and both fallbacks). */
export async function clearImpairment(end: LinkEnd): Promise<void> {
  await stopNfqDelay(end);
  await run('ip', ['netns', 'exec', end.ns, 'tc', 'qdisc', 'del', 'dev', end.dev, 'root']);
  await run('ip', ['netns', 'exec', end.ns, 'nft', 'delete', 'table', 'netdev', lossTable(end.dev)]);
}

// ---- delay without netem: NFQUEUE + tools/nfqdelay ----

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NFQDELAY_SOURCE = join(ROOT, 'lab', 'tools', 'nfqdelay.c');
const NFQDELAY_BUILD = join(ROOT, 'lab', 'tools', '.build');
/** Packets the helper holds at most per link end; beyond that it drops, like a full link queue. */
const NFQDELAY_LIMIT = 10000;

let nfqdelayBuild: Promise<string> | undefined;

/** Builds tools/nfqdelay.c (once per process, and only when the binary is older than the source). */
function nfqdelayBinary(): Promise<string> {
  nfqdelayBuild ??= (async () => {
    const bin = join(NFQDELAY_BUILD, 'nfqdelay');
    if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(NFQDELAY_SOURCE).mtimeMs) return bin;
    mkdirSync(NFQDELAY_BUILD, { recursive: true });
    // Parallel test processes may build at once: each writes its own file, then renames it in.
    const tmp = `${bin}.${process.pid}`;
    let r;
    try {
      r = await run('gcc', ['-O2', '-Wall', '-o', tmp, NFQDELAY_SOURCE, '-lnetfilter_queue', '-lnfnetlink'], { timeoutMs: 60_000 });
    } catch (e) {
      throw new ImpairmentUnsupportedError(`no sch_netem, and the NFQUEUE delay helper cannot be built: gcc: ${(e as Error).message}`);
    }
    if (r.code !== 0) {
      throw new ImpairmentUnsupportedError(
        `no sch_netem, and the NFQUEUE delay helper does not build (Debian: gcc libnetfilter-queue-dev): ${r.stderr.trim()}`,
      );
    }
    renameSync(tmp, bin);
    return bin;
  })();
  nfqdelayBuild.catch(() => (nfqdelayBuild = undefined));
  return nfqdelayBuild;
}

interface NfqDelay {
  readonly child: ChildProcess;
  readonly ns: string;
  /** The rule in the mangle table: chain, then match and target (for `-A` and `-D` alike). */
  readonly rule: readonly string[];
}

const nfqDelays = new Map<string, NfqDelay>();
let nextQueue = 1;

const endKey = (end: LinkEnd): string => `${end.ns}|${end.dev}`;

async function isBridgePort(end: LinkEnd): Promise<boolean> {
  const out = await runOk('ip', ['-n', end.ns, '-j', 'link', 'show', 'dev', end.dev]);
  const links = JSON.parse(out) as Array<{ master?: string }>;
  return links.some((l) => l.master !== undefined);
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 1000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    // nfqdelay accepts what it still holds, then exits.
    child.kill('SIGTERM');
  });
}

/** Starts the helper for one link end, waits until it is bound, then queues the link's packets to it. */
async function startNfqDelay(end: LinkEnd, delayMs: number, jitterMs: number): Promise<void> {
  if (!Number.isInteger(delayMs) || !Number.isInteger(jitterMs) || delayMs < 0 || jitterMs < 0) {
    throw new RangeError(`the NFQUEUE delay takes whole non-negative ms (delay ${delayMs}, jitter ${jitterMs})`);
  }
  const bin = await nfqdelayBinary();
  let ns = end.ns;
  let match = ['POSTROUTING', '-o', end.dev]; // chain and interface match
  if (await isBridgePort(end)) {
    if (!end.peer) throw new ImpairmentUnsupportedError(`${end.dev} in ${end.ns} is a bridge port and its link's other end is unknown: cannot delay it without sch_netem`);
    ns = end.peer.ns;
    match = ['PREROUTING', '-i', end.peer.dev];
  }
  const queue = nextQueue;
  nextQueue = (nextQueue % 65535) + 1;
  const child = spawn('ip', ['netns', 'exec', ns, bin, String(queue), String(delayMs), String(jitterMs), String(NFQDELAY_LIMIT)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error('nfqdelay did not report ready within 5 s')), 5000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      child.once('exit', (code, sig) => {
        clearTimeout(t);
        reject(new ImpairmentUnsupportedError(`no sch_netem, and NFQUEUE is not usable here: nfqdelay exited (${code ?? sig}): ${stderr.trim()}`));
      });
    });
    const rule = [...match, '-j', 'NFQUEUE', '--queue-num', String(queue)];
    const add = await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-t', 'mangle', '-A', ...rule]);
    if (add.code !== 0) {
      throw new ImpairmentUnsupportedError(`no sch_netem, and the iptables NFQUEUE rule is refused (iptables installed?): ${add.stderr.trim()}`);
    }
    nfqDelays.set(endKey(end), { child, ns, rule });
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  // Lab teardown kills everything in its namespaces (the helper too), so it must not keep us alive.
  child.once('exit', () => {
    if (nfqDelays.get(endKey(end))?.child === child) nfqDelays.delete(endKey(end));
  });
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
}

/** Removes the queue rule first (so no packet is queued to a helper that is gone), then stops the helper. */
async function stopNfqDelay(end: LinkEnd): Promise<void> {
  const d = nfqDelays.get(endKey(end));
  if (!d) return;
  nfqDelays.delete(endKey(end));
  await run('ip', ['netns', 'exec', d.ns, 'iptables', '-w', '-t', 'mangle', '-D', ...d.rule]);
  await stopChild(d.child);
}
