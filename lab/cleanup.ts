// Making sure namespaces never outlive the run that made them, whatever happens:
// - a lab registers itself here; on normal exit a synchronous teardown runs (the 'exit' event
//   allows no async work), on SIGINT/SIGTERM/SIGHUP an async one runs and the signal is re-raised;
// - `sweepStale` deletes namespaces whose creating pid (encoded in the name) is dead, which
//   catches what SIGKILL or a power cut left behind, without touching parallel live runs.
import { execFileSync } from 'node:child_process';
import { deleteNamespace, listNamespaces, namespacePids } from './netns.js';
import { parseNamespace } from './names.js';

export interface Disposable {
  teardown(): Promise<void>;
  /** Best-effort synchronous teardown for process 'exit'. */
  teardownSync(): void;
}

const live = new Set<Disposable>();
let installed = false;

export function trackLab(lab: Disposable): void {
  install();
  live.add(lab);
}

export function untrackLab(lab: Disposable): void {
  live.delete(lab);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const lab of live) lab.teardownSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      process.removeListener(sig, onSignal);
      void Promise.allSettled([...live].map((l) => l.teardown())).then(() => {
        // Re-raise so the process dies of the signal as it would have without us, unless
        // someone else handles it (then it is theirs to decide).
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    };
    process.on(sig, onSignal);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but is not ours to signal, still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Kills whatever still runs in the namespaces, then deletes them. Missing ones are fine. */
export async function removeNamespaces(names: readonly string[]): Promise<void> {
  await Promise.all(names.map(async (ns) => killPids(await namespacePids(ns))));
  await Promise.all(names.map((ns) => deleteNamespace(ns)));
}

export function removeNamespacesSync(names: readonly string[]): void {
  for (const ns of names) {
    try {
      const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      killPids(out.split('\n').filter((l) => /^\d+$/.test(l)).map(Number));
    } catch {
      // The namespace may already be gone.
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
}

/** Deletes namespaces left by lab runs whose process is dead. Returns the names deleted. */
export async function sweepStale(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const p = parseNamespace(ns);
    return p !== undefined && p.owner !== 'keep' && !pidAlive(p.owner);
  });
  await removeNamespaces(stale);
  return stale;
}

/** Every namespace whose name starts with `prefix` (a lab's own, or a detached one for `down`). */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => ns.startsWith(prefix));
}
