// Relay frames: the binary WebSocket frames that carry datagrams between tunnel peers through
// the server. The one place where their layout is written and read:
//
//   up   (peer -> server)  [32-byte destination node key][payload]
//   down (server -> peer)  [32-byte source node key][payload]
//
// The server rewrites the key in place (destination -> source) and never reads the payload.
import { MAX_RELAY_PAYLOAD, NODE_KEY_BYTES, type NodeKeyHex } from './protocol.js';

export interface RelayFrame {
  readonly key: NodeKeyHex;
  readonly payload: Buffer;
}

export function bytesToKey(bytes: Uint8Array): NodeKeyHex {
  return Buffer.from(bytes.buffer, bytes.byteOffset, NODE_KEY_BYTES).toString('hex');
}

/** Writes the 32-byte key at the start of a relay frame (of either format); a key of the wrong size throws. */
export function writeRelayKey(frame: Buffer, key: NodeKeyHex | Uint8Array): void {
  if (typeof key === 'string') {
    if (frame.write(key, 0, NODE_KEY_BYTES, 'hex') !== NODE_KEY_BYTES) throw new RangeError('a node key is 64 hex digits');
  } else {
    if (key.length < NODE_KEY_BYTES) throw new RangeError(`a node key is ${NODE_KEY_BYTES} bytes`);
    frame.set(key.subarray(0, NODE_KEY_BYTES), 0);
  }
}

/** Builds a relay frame: the 32-byte key (destination up, source down), then the payload. */
export function encodeRelayFrame(key: NodeKeyHex | Uint8Array, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(NODE_KEY_BYTES + payload.length);
  writeRelayKey(frame, key);
  frame.set(payload, NODE_KEY_BYTES);
  return frame;
}

export type RelayFrameProblem = 'too-short' | 'too-long';

/**
 * Splits a relay frame, or says why it is not one: shorter than a key, or a payload beyond
 * MAX_RELAY_PAYLOAD. The payload is a view into `frame`, not a copy.
 */
export function decodeRelayFrame(frame: Buffer): RelayFrame | RelayFrameProblem {
  if (frame.length < NODE_KEY_BYTES) return 'too-short';
  if (frame.length > NODE_KEY_BYTES + MAX_RELAY_PAYLOAD) return 'too-long';
  return { key: bytesToKey(frame), payload: frame.subarray(NODE_KEY_BYTES) };
}

/** Rewrites the key of a decoded frame in place (the server: destination -> source). */
export function readdressRelayFrame(frame: Buffer, key: Uint8Array): Buffer {
  frame.set(key.subarray(0, NODE_KEY_BYTES), 0);
  return frame;
}
