// TRAVERSE_TRACE=1: one stderr line per start-up milestone of a peer command, in ms since the
// process started (performance.now() counts from there), to see where a `traverse proxy`'s
// set-up time goes. Off by default: a cheap check, nothing written.
import { performance } from 'node:perf_hooks';

const enabled = process.env.TRAVERSE_TRACE === '1';

/** Where the CLI's loader (cli/code-cache.ts) leaves its "started up" hook for startedUp(). */
export const STARTED_UP = Symbol.for('traverse.started-up');

export function trace(milestone: string): void {
  if (!enabled) return;
  // CPU time too: on a loaded machine the wall time mostly says how long the process waited.
  const { user, system } = process.cpuUsage();
  process.stderr.write(`traverse trace ${performance.now().toFixed(1).padStart(7)} ms (cpu ${((user + system) / 1000).toFixed(0).padStart(4)} ms)  ${milestone}\n`);
}

/**
 * The command is past its start-up (a proxy's first byte from the target, a peer connected): the
 * code cache the CLI starts with (cli/code-cache.ts) may now be made from this run, which has
 * compiled what a start needs. A no-op when not run through that loader.
 */
export function startedUp(milestone: string): void {
  trace(milestone);
  const mark = (globalThis as Record<symbol, unknown>)[STARTED_UP];
  if (typeof mark === 'function') (mark as () => void)();
}
