// Proof that a node holds the private half of the node key it publishes. Without it, anyone
// with a token could publish a key they read in /api/v1/peers and squat it while its node is
// away. X25519 keys cannot sign, so the proof is a MAC under the shared secret of the node key
// and the server's key: only the holder of the node's private key (or the server's) can make it.
//
//   config.challenge = { key: server's X25519 public key, nonce: 32 random bytes, new per connection }
//   proof            = HMAC-SHA256(X25519(node private, server public),
//                                  "traverse node key proof v1" | nonce | node public key)
//
// The nonce binds the proof to one connection: a proof seen on the wire is no good on another.
import { createHmac, randomBytes } from 'node:crypto';
import * as z from 'zod';

const LABEL = Buffer.from('traverse node key proof v1', 'latin1');
const CHALLENGE_NONCE_BYTES = 32;

export const keyChallenge = z.object({
  /** The server's X25519 public key, 64 hex characters. */
  key: z.string().regex(/^[0-9a-f]{64}$/),
  nonce: z.string().regex(/^[0-9a-f]{64}$/),
});
export type KeyChallenge = z.infer<typeof keyChallenge>;

export const keyProofText = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters (an HMAC-SHA256)');

export function newChallengeNonce(): string {
  return randomBytes(CHALLENGE_NONCE_BYTES).toString('hex');
}

/** The proof for `nodeKeyHex`, given the X25519 secret it shares with the challenge's key. */
export function keyProof(sharedSecret: Uint8Array, nonceHex: string, nodeKeyHex: string): string {
  return createHmac('sha256', sharedSecret)
    .update(LABEL)
    .update(Buffer.from(nonceHex, 'hex'))
    .update(Buffer.from(nodeKeyHex, 'hex'))
    .digest('hex');
}
