// Keys for MESSAGE-INTEGRITY(-SHA256) (RFC 8489 section 9).
import { createHash } from 'node:crypto';
import { PasswordAlgorithmId } from './constants.js';

/**
 * The OpaqueString profile of RFC 8265 as RFC 8489 asks for passwords (and realms): non-ASCII
 * spaces become U+0020, then Unicode NFC. (Characters the profile forbids are not rejected here:
 * they only change which key both sides derive, and both sides derive it the same way.)
 */
export function opaqueString(s: string): string {
  return s.replace(/[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g, ' ').normalize('NFC');
}

/** Short-term credential key: the password itself (RFC 8489 section 9.1.1). */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(opaqueString(password), 'utf8');
}

/**
 * Long-term credential key (RFC 8489 section 9.2.2): MD5 or SHA-256 of
 * username ":" OpaqueString(realm) ":" OpaqueString(password).
 */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  algorithm: number = PasswordAlgorithmId.MD5,
): Buffer {
  const input = `${username.normalize('NFC')}:${opaqueString(realm)}:${opaqueString(password)}`;
  const hash = algorithm === PasswordAlgorithmId.SHA256 ? 'sha256' : 'md5';
  return createHash(hash).update(input, 'utf8').digest();
}

/** USERHASH (RFC 8489 section 14.4): SHA-256 of username ":" realm. */
export function userhash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username.normalize('NFC')}:${opaqueString(realm)}`, 'utf8').digest();
}
