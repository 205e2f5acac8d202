// When to ask the ACME CA for a certificate, as a pure function of the one served and the time.
// Renew at two thirds of the lifetime (Let's Encrypt's 90 days: 30 days ahead), which leaves a
// month of retries; after a failure retry with a doubling delay from 5 minutes up to 6 hours, but
// never wait past the point where the certificate has a tenth of its lifetime left.

export interface Validity {
  readonly notBefore: number;
  readonly notAfter: number;
}

export const FIRST_RETRY_MS = 5 * 60_000;
export const MAX_RETRY_MS = 6 * 3600_000;

/** The moment a certificate becomes due for renewal. */
export function renewalDue(v: Validity): number {
  return v.notBefore + Math.floor(((v.notAfter - v.notBefore) * 2) / 3);
}

/**
 * When to try next (epoch ms): now when there is no certificate or it is due, else when it will
 * be due. `failures` is the number of attempts failed in a row since the last success.
 */
export function nextAttempt(current: Validity | null, now: number, failures: number): number {
  if (failures > 0) {
    const retry = now + Math.min(FIRST_RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS);
    if (current === null) return retry;
    // Near expiry the backoff gives way: no later than the last tenth, then every FIRST_RETRY_MS.
    const late = current.notAfter - Math.floor((current.notAfter - current.notBefore) / 10);
    return late > now ? Math.min(retry, late) : Math.min(retry, now + FIRST_RETRY_MS);
  }
  if (current === null) return now;
  return Math.max(now, renewalDue(current));
}
