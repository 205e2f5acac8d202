// Link impairments: added latency and loss on one interface's egress. `tc netem` does both when
// the kernel has sch_netem. Some kernels (this project's CI VM among them) are built without it;
// loss then falls back to an nftables netdev egress chain that drops a random share of packets,
// and delay is refused with a clear error (nothing else in the kernel can delay packets).
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
  if (delay > 0) {
    throw new ImpairmentUnsupportedError(
      'this kernel has no sch_netem (CONFIG_NET_SCH_NETEM), so the lab cannot add delay; loss alone still works',
    );
  }
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

/** Removes any impairment from a link end (netem qdisc and nft fallback both). */
export async function clearImpairment(end: LinkEnd): Promise<void> {
  await run('ip', ['netns', 'exec', end.ns, 'tc', 'qdisc', 'del', 'dev', end.dev, 'root']);
  await run('ip', ['netns', 'exec', end.ns, 'nft', 'delete', 'table', 'netdev', lossTable(end.dev)]);
}
