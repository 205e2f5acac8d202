// Pieces the coordinator benchmarks share: a sender paced to a fixed rate, and the child-process
// side of a memory measurement (forked with --expose-gc, answering 'measure' over IPC).
import type { MemorySample } from './coordinator-server.js';

/** Calls `send` RATE times a second (in 10 ms ticks) for `seconds`, then waits `settleMs`. */
export function sendAtRate(rate: number, seconds: number, settleMs: number, send: () => void): Promise<void> {
  const tickMs = 10;
  const perTick = rate / (1000 / tickMs);
  let owed = 0;
  return new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      owed += perTick;
      while (owed >= 1) {
        owed -= 1;
        send();
      }
    }, tickMs);
    setTimeout(() => {
      clearInterval(timer);
      setTimeout(resolve, settleMs); // let the last ones arrive
    }, seconds * 1000);
  });
}

/** In a forked server: answers 'measure' with its memory after two full collections. */
export function answerMemoryMeasurements(): void {
  process.on('message', (m) => {
    if (m !== 'measure') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    process.send!({ rss: u.rss, heapUsed: u.heapUsed, external: u.external } satisfies MemorySample);
  });
}
