// CPU time from /proc, for the benchmarks' cost per byte: what the machine's load skews less than
// it skews throughput.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU seconds (user + system) used so far by these processes and their descendants: a measure of
 * the cost per byte that the machine's load does not skew the way it skews throughput.
 */
export function cpuSeconds(roots: readonly number[]): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch {
      // gone meanwhile
    }
  }
  const all = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, pp] of parent) {
      if (all.has(pp) && !all.has(pid)) {
        all.add(pid);
        grew = true;
      }
    }
  }
  let t = 0;
  for (const pid of all) t += ticks.get(pid) ?? 0;
  return t / 100; // USER_HZ
}
