// Sealed disco packets. On the wire:
//
//   magic "TVd1" (4) | sender's node key (32) | nonce (12) | ChaCha20-Poly1305(message) | tag (16)
//
// The magic's first byte (0x54) has its top bits 01, so a disco packet is never mistaken for STUN
// (top bits 00) or UDX data (0xff) on the node's one socket. The key that seals a packet is
// HKDF-SHA256 over the X25519 secret of the two node keys, one key per direction. The nonce is
// the sender's 64-bit message counter (started from the clock in microseconds, so it keeps growing
// across restarts) and four zero bytes; the receiver's replay window drops any counter it has seen.
// A peer's replay window outlives `forget` (the key left; it may come back with the same key) in
// a bounded LRU of RETAINED_REPLAY_WINDOWS keys, so packets captured before a reconnect stay
// dead after it, while a restarted sender's clock-based counters are still newer.
// A packet from a key the coordinator did not give us is dropped before any crypto work, so
// strangers cannot make us compute X25519.
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import type { NodeKey } from '../identity/node-key.js';
import { decodeDisco, encodeDisco, type DiscoMessage } from './messages.js';
import { ReplayWindow } from './replay.js';

export const DISCO_MAGIC = Buffer.from('TVd1', 'latin1');
const KEY_OFFSET = 4;
const NONCE_OFFSET = 36;
export const DISCO_HEADER_BYTES = 48;
const TAG_BYTES = 16;
/** Larger than any disco message we send; bigger packets are not disco. */
export const MAX_DISCO_PACKET = 1024;
/** Replay windows of forgotten keys kept, least recently forgotten dropped first. */
export const RETAINED_REPLAY_WINDOWS = 4096;

export function looksLikeDisco(buf: Uint8Array): boolean {
  return buf.length >= DISCO_HEADER_BYTES + TAG_BYTES + 2 && buf[0] === 0x54 && buf[1] === 0x56 && buf[2] === 0x64 && buf[3] === 0x31;
}

interface PeerKeys {
  readonly send: Buffer;
  readonly recv: Buffer;
  readonly replay: ReplayWindow;
}

export interface OpenedDisco {
  /** The sender's node key, hex. */
  readonly sender: string;
  readonly message: DiscoMessage;
}

export class DiscoSealer {
  private counter: bigint;
  private readonly peers = new Map<string, PeerKeys>();
  /** Replay windows of forgotten peers, oldest first. */
  private readonly retired = new Map<string, ReplayWindow>();

  constructor(
    private readonly self: NodeKey,
    now: () => number = Date.now,
  ) {
    this.counter = BigInt(Math.floor(now())) * 1000n;
  }

  /** Seals a message for the peer with this public key (hex). */
  seal(peerHex: string, message: DiscoMessage): Buffer {
    const keys = this.keysFor(peerHex);
    const plaintext = encodeDisco(message);
    const out = Buffer.allocUnsafe(DISCO_HEADER_BYTES + plaintext.length + TAG_BYTES);
    DISCO_MAGIC.copy(out, 0);
    this.self.publicKey.copy(out, KEY_OFFSET);
    this.counter += 1n;
    out.writeBigUInt64BE(this.counter, NONCE_OFFSET);
    out.writeUInt32BE(0, NONCE_OFFSET + 8);
    const nonce = out.subarray(NONCE_OFFSET, DISCO_HEADER_BYTES);
    const cipher = createCipheriv('chacha20-poly1305', keys.send, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(out.subarray(0, DISCO_HEADER_BYTES), { plaintextLength: plaintext.length });
    const n = cipher.update(plaintext).copy(out, DISCO_HEADER_BYTES);
    cipher.final();
    cipher.getAuthTag().copy(out, DISCO_HEADER_BYTES + n);
    return out;
  }

  /**
   * Opens a packet if it comes from a trusted key, authenticates, and is not a replay; null
   * otherwise (disco drops silently: an answer would tell a prober we exist).
   */
  open(buf: Uint8Array, isTrusted: (senderHex: string) => boolean): OpenedDisco | null {
    if (!looksLikeDisco(buf) || buf.length > MAX_DISCO_PACKET) return null;
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    const sender = b.toString('hex', KEY_OFFSET, NONCE_OFFSET);
    if (!isTrusted(sender)) return null;
    const keys = this.keysFor(sender);
    const nonce = b.subarray(NONCE_OFFSET, DISCO_HEADER_BYTES);
    const body = b.subarray(DISCO_HEADER_BYTES, b.length - TAG_BYTES);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('chacha20-poly1305', keys.recv, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(b.subarray(0, DISCO_HEADER_BYTES), { plaintextLength: body.length });
      decipher.setAuthTag(b.subarray(b.length - TAG_BYTES));
      plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      return null;
    }
    // Only an authentic packet may move the replay window.
    if (!keys.replay.accept(nonce.readBigUInt64BE(0))) return null;
    const message = decodeDisco(plaintext);
    return message ? { sender, message } : null;
  }

  /**
   * Drops the keys we keep for a peer the coordinator no longer vouches for; its replay window
   * is retired, not dropped, so a packet of its earlier session stays a replay if it returns.
   */
  forget(peerHex: string): void {
    const k = this.peers.get(peerHex);
    if (!k) return;
    this.peers.delete(peerHex);
    this.retired.delete(peerHex);
    this.retired.set(peerHex, k.replay);
    if (this.retired.size > RETAINED_REPLAY_WINDOWS) this.retired.delete(this.retired.keys().next().value!);
  }

  private keysFor(peerHex: string): PeerKeys {
    let k = this.peers.get(peerHex);
    if (!k) {
      const peer = Buffer.from(peerHex, 'hex');
      const secret = this.self.sharedSecret(peer);
      const derive = (from: Buffer, to: Buffer): Buffer =>
        Buffer.from(hkdfSync('sha256', secret, 'traverse disco v1', Buffer.concat([from, to]), 32));
      const replay = this.retired.get(peerHex) ?? new ReplayWindow();
      this.retired.delete(peerHex);
      k = { send: derive(this.self.publicKey, peer), recv: derive(peer, this.self.publicKey), replay };
      this.peers.set(peerHex, k);
    }
    return k;
  }
}
