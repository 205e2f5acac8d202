// How two replicas prove to each other that they hold the mesh key, without sending it: a
// challenge-response over the fresh mesh connection, both ways, bound to both replica ids and
// both nonces so that no answer can be replayed on another connection or reflected back.
//
//   acceptor -> dialer   {"t":"hello","id":A,"nonce":nA}
//   dialer   -> acceptor {"t":"auth","id":D,"nonce":nD,"mac":HMAC(key, "dial|nA|nD|D|A")}
//   acceptor -> dialer   {"t":"ok","mac":HMAC(key, "accept|nA|nD|D|A")}
//
// Only then do relay frames flow (dialer -> acceptor). The mesh key is not a peer token: peers
// never see it, and a peer token does not open the mesh.
import { createHmac, randomBytes } from 'node:crypto';
import * as z from 'zod';
import { hashesEqual } from '../tokens.js';
import { replicaId } from './events.js';

export const MESH_PATH = '/api/v1/mesh';
/** At least this many bytes of key: a guessable key would open the relay to anyone. */
export const MIN_MESH_KEY_BYTES = 32;

const nonce = z.string().regex(/^[0-9a-f]{64}$/);
export const meshHello = z.object({ t: z.literal('hello'), id: replicaId, nonce });
export const meshAuth = z.object({ t: z.literal('auth'), id: replicaId, nonce, mac: z.string().regex(/^[0-9a-f]{64}$/) });
export const meshOk = z.object({ t: z.literal('ok'), mac: z.string().regex(/^[0-9a-f]{64}$/) });

export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

export interface MeshTranscript {
  readonly acceptor: string;
  readonly acceptorNonce: string;
  readonly dialer: string;
  readonly dialerNonce: string;
}

export function meshMac(key: Buffer, role: 'dial' | 'accept', t: MeshTranscript): string {
  return createHmac('sha256', key).update(`traverse-mesh-v1|${role}|${t.acceptorNonce}|${t.dialerNonce}|${t.dialer}|${t.acceptor}`).digest('hex');
}

export function meshMacValid(key: Buffer, role: 'dial' | 'accept', t: MeshTranscript, mac: string): boolean {
  return hashesEqual(meshMac(key, role, t), mac);
}

/** A mesh key from a file's text: hex (64+ characters) or any text of at least 32 bytes. */
export function parseMeshKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0 ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'utf8');
  if (key.length < MIN_MESH_KEY_BYTES) throw new Error(`the mesh key is ${key.length} bytes; it must be at least ${MIN_MESH_KEY_BYTES} (make one with: openssl rand -hex 32)`);
  return key;
}
