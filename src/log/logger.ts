// Structured logs go to stderr so that stdout stays for results (and --json). On a terminal
// they are one readable line each; otherwise (or with TRAVERSE_LOG_FORMAT=json) JSON lines, for
// log collectors and for tests that read them.
import { writeSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The format of the moment: TRAVERSE_LOG_FORMAT if set, else readable on a terminal, JSON otherwise. */
export function logFormat(env = process.env): LogFormat {
  const f = env.TRAVERSE_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return process.stderr.isTTY ? 'pretty' : 'json';
}

export function createLogger(name: string, level = process.env.TRAVERSE_LOG_LEVEL ?? 'info'): Logger {
  const destination = logFormat() === 'pretty' ? prettyDestination() : pino.destination({ fd: 2, sync: true });
  return pino({ name, level, base: { pid: process.pid } }, destination);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** "14:41:00.123 INFO  agent: path changed peer=3f9a0c1e path={"kind":"direct",...}" */
export function formatLogLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[o.level as number] ?? String(o.level)).padEnd(5);
  const fields = Object.entries(o)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${time} ${level} ${String(o.name ?? '')}: ${String(o.msg ?? '')}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`;
}

function prettyDestination(): DestinationStream {
  return { write: (line: string) => void writeSync(2, formatLogLine(line)) };
}

/** A logger that drops everything: the default for library code that is not given one. */
export const silentLogger: Logger = pino({ level: 'silent' });
