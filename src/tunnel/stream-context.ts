// What the parts of a StreamManager (opening.ts, carrier-moves.ts, lane-offers.ts) share. The
// manager (streams.ts) provides it; the parts hold no state of each other's.
import type { UDXStream } from 'udx-native';
import type { Logger } from '../log/logger.js';
import type { MagicSock } from '../magicsock/magicsock.js';
import type { Path } from '../net/path.js';
import type { StreamControl } from './control.js';
import type { StreamRecord } from './stream-record.js';

/** What carries a stream's bytes: a UDX stream (direct or relayed), a TCP lane, or a relay lane. */
export type CarrierKind = 'udx' | 'tcp' | 'relay-lane';

export interface StreamContext {
  readonly magicsock: MagicSock;
  readonly log: Logger;
  /** Resend interval and deadline for control messages (ms). */
  readonly resendMs: number;
  readonly deadlineMs: number;
  /** The streams open now, by streamKey(peer, sid). */
  readonly sessions: ReadonlyMap<string, StreamRecord>;
  /** True once the manager has closed: nothing new starts. */
  isClosed(): boolean;
  /** Streams open with this peer. */
  count(peer: string): number;
  /** Keeps a new stream's record until its session closes. */
  track(r: StreamRecord): void;
  /** Sends a control message to the peer over `path` (sealed; it may be lost). */
  send(peer: string, path: Path, m: StreamControl): void;
  /** A new UDX stream, with an id this node has not used before. */
  newCarrier(): UDXStream;
  /** Connects a carrier to the peer's UDX stream `remoteId` over `path`; false if that cannot be now. */
  connectCarrier(carrier: UDXStream, peer: string, remoteId: number, path: Path): Promise<boolean>;
  /** Tells the manager's listeners that a stream's carrier moved. */
  moved(peer: string, sid: bigint, path: Path, kind: CarrierKind): void;
}
