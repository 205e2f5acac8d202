// Relay batches (relay frame format 2): several datagrams between the same two nodes in one
// binary WebSocket frame, instead of one frame each (format 1, relay-frame.ts). A relayed UDX
// stream sends tens of datagrams per event-loop turn; one frame per datagram costs a write
// syscall and a frame parse per 1.2 KB at both nodes and twice at the server.
//
//   [32-byte node key] then 1..MAX_BATCH_DATAGRAMS entries, each [u16 length, big-endian][payload]
//
// The key is the destination up (peer -> server) and the source down (server -> peer), as in
// format 1: the server rewrites it in place and passes the rest on without reading a payload.
// Each payload is 1..MAX_RELAY_PAYLOAD bytes, the entries (lengths included) at most
// MAX_BATCH_BYTES, and they fill the frame exactly: anything else is malformed, and a malformed
// frame is dropped whole (never partly delivered).
//
// Versioned per connection: a node that reads and writes format 2 says so on its upgrade request
// (RELAY_FRAMES_HEADER: 2), and the server answers `relay.frames: 2` in its config when it does
// too; from then on every binary frame on that connection, both ways, is a batch (a lone datagram
// is a batch of one). An old node (no header) or an old server (no `frames` in its config) keeps
// format 1, and the server converts between the two for a pair of nodes that differ.
import { MAX_RELAY_PAYLOAD, NODE_KEY_BYTES, type NodeKeyHex } from './protocol.js';
import { writeRelayKey } from './relay-frame.js';

export const RELAY_FRAMES_HEADER = 'x-traverse-relay-frames';
export const RELAY_BATCH_FORMAT = 2;
/** Datagrams in one batch at most. */
export const MAX_BATCH_DATAGRAMS = 64;
/** Bytes of entries (2-byte lengths and payloads) in one batch at most. */
export const MAX_BATCH_BYTES = 64 * 1024;
/** The largest batch frame, key included. */
export const MAX_BATCH_FRAME = NODE_KEY_BYTES + MAX_BATCH_BYTES;
const LENGTH_BYTES = 2;

export interface RelayBatch {
  /** The node key (destination up, source down): a view into the frame. */
  readonly key: Buffer;
  /** The datagrams, in order: views into the frame, not copies. */
  readonly payloads: Buffer[];
  /** Their bytes in all (without the lengths). */
  readonly payloadBytes: number;
}

export type RelayBatchProblem = 'too-short' | 'too-long' | 'too-many' | 'empty-datagram' | 'datagram-too-long' | 'truncated';

/** The bytes a batch of these payloads takes after its key (what MAX_BATCH_BYTES bounds). */
export function batchEntryBytes(payloadLength: number): number {
  return LENGTH_BYTES + payloadLength;
}

/**
 * Builds a batch frame. The caller keeps within the bounds (1..MAX_BATCH_DATAGRAMS payloads of
 * 1..MAX_RELAY_PAYLOAD bytes, MAX_BATCH_BYTES in all): a frame outside them is a bug, so it throws.
 */
export function encodeRelayBatch(key: NodeKeyHex | Uint8Array, payloads: readonly Uint8Array[]): Buffer {
  if (payloads.length === 0 || payloads.length > MAX_BATCH_DATAGRAMS) throw new RangeError(`a relay batch holds 1..${MAX_BATCH_DATAGRAMS} datagrams, not ${payloads.length}`);
  let size = 0;
  for (const p of payloads) {
    if (p.length === 0 || p.length > MAX_RELAY_PAYLOAD) throw new RangeError(`a relayed datagram has 1..${MAX_RELAY_PAYLOAD} bytes, not ${p.length}`);
    size += batchEntryBytes(p.length);
  }
  if (size > MAX_BATCH_BYTES) throw new RangeError(`a relay batch holds at most ${MAX_BATCH_BYTES} bytes, not ${size}`);
  const frame = Buffer.allocUnsafe(NODE_KEY_BYTES + size);
  writeRelayKey(frame, key);
  let at = NODE_KEY_BYTES;
  for (const p of payloads) {
    frame.writeUInt16BE(p.length, at);
    frame.set(p, at + LENGTH_BYTES);
    at += LENGTH_BYTES + p.length;
  }
  return frame;
}

/** Splits a batch frame into its datagrams, or says why it is malformed (then none counts). */
export function decodeRelayBatch(frame: Buffer): RelayBatch | RelayBatchProblem {
  if (frame.length < NODE_KEY_BYTES + LENGTH_BYTES + 1) return 'too-short';
  if (frame.length > MAX_BATCH_FRAME) return 'too-long';
  const payloads: Buffer[] = [];
  let payloadBytes = 0;
  let at = NODE_KEY_BYTES;
  while (at < frame.length) {
    if (payloads.length === MAX_BATCH_DATAGRAMS) return 'too-many';
    if (at + LENGTH_BYTES > frame.length) return 'truncated';
    const length = frame.readUInt16BE(at);
    if (length === 0) return 'empty-datagram';
    if (length > MAX_RELAY_PAYLOAD) return 'datagram-too-long';
    const start = at + LENGTH_BYTES;
    if (start + length > frame.length) return 'truncated';
    payloads.push(frame.subarray(start, start + length));
    payloadBytes += length;
    at = start + length;
  }
  return { key: frame.subarray(0, NODE_KEY_BYTES), payloads, payloadBytes };
}

/** Whether a node's upgrade request asks for relay batches (it reads and writes format 2). */
export function asksForRelayBatches(headers: Record<string, string | string[] | undefined>): boolean {
  const v = headers[RELAY_FRAMES_HEADER];
  return (Array.isArray(v) ? v[0] : v)?.trim() === String(RELAY_BATCH_FORMAT);
}
