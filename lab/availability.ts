// Whether this machine can run lab tests, decided in one place. Lab tests skip with the reason
// where the lab cannot run (not Linux, not root, no iproute2/nftables, namespaces refused), and
// FAIL instead when TRAVERSE_REQUIRE_LAB=1 (CI sets it: there a skipped lab is a broken CI).
import type { TestContext } from 'node:test';
import { run } from './exec.js';
import { newPrefix } from './names.js';
import { requiredByCi } from '../test/helpers/required.js';

export type LabAvailability = { readonly available: true } | { readonly available: false; readonly reason: string };

let cached: Promise<LabAvailability> | undefined;

async function probe(): Promise<LabAvailability> {
  if (process.platform !== 'linux') return { available: false, reason: `the NAT lab needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { available: false, reason: 'the NAT lab needs root (network namespaces, nftables)' };
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['conntrack', ['--version']]] as const) {
    try {
      const r = await run(tool, args, { timeoutMs: 5000 });
      if (r.code !== 0) return { available: false, reason: `\`${tool}\` does not work: ${r.stderr.trim()}` };
    } catch {
      return { available: false, reason: `\`${tool}\` is not installed (Debian: iproute2, nftables, conntrack)` };
    }
  }
  // The real test: create a namespace with a veth and an nftables table in it, then delete it.
  const ns = `${newPrefix()}probe`;
  try {
    const steps: Array<readonly string[]> = [
      ['netns', 'add', ns],
      ['link', 'add', 'name', 'probe0', 'netns', ns, 'type', 'veth', 'peer', 'name', 'probe1', 'netns', ns],
      ['netns', 'exec', ns, 'nft', 'add', 'table', 'ip', 'probe'],
    ];
    for (const args of steps) {
      const r = await run('ip', args, { timeoutMs: 5000 });
      if (r.code !== 0) return { available: false, reason: `\`ip ${args.join(' ')}\` failed: ${r.stderr.trim()}` };
    }
    return { available: true };
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

/** Probes once per process whether the lab can run here. */
export function labAvailability(): Promise<LabAvailability> {
  cached ??= probe();
  return cached;
}

export function labRequired(): boolean {
  return requiredByCi();
}

/**
 * For `describe(name, { skip: await labSkip() }, ...)`: false when the lab runs, the reason when
 * it cannot. Throws when TRAVERSE_REQUIRE_LAB=1 and it cannot, so the file fails loudly.
 */
export async function labSkip(): Promise<string | false> {
  const a = await labAvailability();
  if (a.available) return false;
  if (labRequired()) throw new Error(`TRAVERSE_REQUIRE_LAB=1 but ${a.reason}`);
  return `NAT lab unavailable: ${a.reason}`;
}

/** For use inside a test: returns true when the lab runs; otherwise skips `t` (or fails, see labSkip). */
export async function requireLabOrSkip(t: TestContext): Promise<boolean> {
  const reason = await labSkip();
  if (reason === false) return true;
  t.skip(reason);
  return false;
}
