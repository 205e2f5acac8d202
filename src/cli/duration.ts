// Durations as operators type them: "90s", "15m", "12h", "30d", "2w".
const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

export class DurationError extends Error {
  override readonly name = 'DurationError';
}

export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  const unit = m?.[2];
  if (!m || unit === undefined) {
    throw new DurationError(`duration "${text}" is not a number followed by s, m, h, d or w (e.g. 30d)`);
  }
  const ms = Number(m[1]) * (UNIT_MS[unit] ?? 0);
  if (ms <= 0) throw new DurationError(`duration "${text}" must be longer than zero`);
  return ms;
}
