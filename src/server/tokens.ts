// Bearer tokens: 256 random bits, shown once, stored only as a SHA-256 hash. A slow password
// hash buys nothing for secrets this long, and SHA-256 keeps every upgrade request cheap.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The prefix makes a leaked token recognisable (and greppable by secret scanners). */
export const TOKEN_PREFIX = 'trv1_';
const TOKEN_BYTES = 32;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** The stored form of a token: hex SHA-256 of the whole string. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex hashes of equal length. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** Reads "Bearer <token>"; undefined when the header is missing or shaped wrong. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +([A-Za-z0-9_\-.~+/=]{16,256})$/i.exec(header.trim());
  return m?.[1];
}
