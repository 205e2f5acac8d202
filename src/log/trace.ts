// TRAVERSE_TRACE=1: one stderr line per start-up milestone of a peer command, in ms since the
// process started (performance.now() counts from there), to see where a `traverse proxy`'s
// set-up time goes. Off by default: a cheap check, nothing written.
import { performance } from 'node:perf_hooks';

const enabled = process.env.TRAVERSE_TRACE === '1';

export function trace(milestone: string): void {
  if (enabled) process.stderr.write(`traverse trace ${performance.now().toFixed(1).padStart(7)} ms  ${milestone}\n`);
}
