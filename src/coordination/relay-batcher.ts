// Gathers the datagrams a node relays in one event-loop turn into batches (relay-batch.ts), one
// per destination, sent at the end of the turn. A relayed UDX stream hands over its packets one
// `message` event at a time, many in one turn; sending each as it comes would cost a WebSocket
// frame and a write each. Nothing waits longer than the turn it was sent in (the caller's `defer`
// is setImmediate), and a batch that is full goes out at once.
//
// The payloads are held by reference until the batch is encoded: callers hand over buffers they
// do not reuse (a received UDP message, a freshly sealed disco message).
import type { NodeKeyHex } from './protocol.js';
import { batchEntryBytes, encodeRelayBatch, MAX_BATCH_BYTES, MAX_BATCH_DATAGRAMS } from './relay-batch.js';

export interface RelayBatcherOptions {
  /** Sends one batch frame (the connection may have gone meanwhile: then it is dropped there). */
  readonly send: (frame: Buffer) => void;
  /** Runs `fn` once the current event-loop turn's I/O is handled (setImmediate in a node). */
  readonly defer: (fn: () => void) => void;
}

interface Pending {
  readonly payloads: Uint8Array[];
  bytes: number;
}

export class RelayBatcher {
  private readonly pending = new Map<NodeKeyHex, Pending>();
  private scheduled = false;

  constructor(private readonly options: RelayBatcherOptions) {}

  /** Datagrams waiting for the end of the turn (for tests). */
  get waiting(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.payloads.length;
    return n;
  }

  /** Queues one datagram (1..MAX_RELAY_PAYLOAD bytes, the caller checks) for `key`. */
  push(key: NodeKeyHex, payload: Uint8Array): void {
    const entry = batchEntryBytes(payload.length);
    let p = this.pending.get(key);
    if (p && (p.payloads.length === MAX_BATCH_DATAGRAMS || p.bytes + entry > MAX_BATCH_BYTES)) {
      // Full: this one goes now, the new datagram starts the next.
      this.pending.delete(key);
      this.options.send(encodeRelayBatch(key, p.payloads));
      p = undefined;
    }
    if (!p) this.pending.set(key, (p = { payloads: [], bytes: 0 }));
    p.payloads.push(payload);
    p.bytes += entry;
    if (!this.scheduled) {
      this.scheduled = true;
      this.options.defer(() => this.flush());
    }
  }

  /** Sends every batch waiting. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batches = [...this.pending];
    this.pending.clear();
    for (const [key, p] of batches) this.options.send(encodeRelayBatch(key, p.payloads));
  }

  /** Forgets what waits (the connection closed: relayed datagrams are not queued across it). */
  clear(): void {
    this.pending.clear();
  }
}
