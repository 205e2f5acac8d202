// Structured logs go to stderr so that stdout stays for results (and --json).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.TRAVERSE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything: the default for library code that is not given one. */
export const silentLogger: Logger = pino({ level: 'silent' });
