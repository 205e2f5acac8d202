// What a node keeps for each open stream. The two ends keep different things: the client (which
// opened the stream) drives carrier switches and lane offers, the agent (which accepted it)
// remembers its answers so that a resent request gets the same answer again.
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import type { UDXStream } from 'udx-native';
import type { Path } from '../net/path.js';
import type { CarrierAck, RelayLaneAck, StreamAccept, TcpLaneAck } from './control.js';
import type { Resend } from './resend.js';
import type { ResumableSession } from './session.js';

/** Lanes exist only on direct paths. */
export type DirectPath = Extract<Path, { kind: 'direct' }>;

interface StreamRecordBase {
  readonly sid: bigint;
  readonly peer: string;
  /** The encrypted stream the user reads and writes (session.ts). */
  readonly session: ResumableSession;
  /** The lane carrying the stream now, if any: a direct TCP lane or a relay lane. */
  lane: Socket | null;
  /** Which kind `lane` is. */
  laneKind: LaneKind | null;
  /** Cancels lane attempts when the stream ends. */
  readonly laneAbort: AbortController;
}

/** The client's switch of a stream to a new UDX carrier on `path`, waiting for the carrier-ack. */
export interface CarrierSwitch {
  readonly carrier: UDXStream;
  readonly path: Path;
  readonly resend: Resend;
}

/** The client's TCP lane offer, from the port reservation to the lane opening or failing. */
export interface LaneOffer {
  readonly token: Buffer;
  /**
   * The path the offer travels: a direct path (the lane goes to its endpoint's IP), or the relay
   * when no UDP path exists (the lane goes to the IP the coordinator saw the peer connect from).
   */
  readonly path: Path;
  /** The peer's IP the lane connects to. */
  readonly address: string;
  /** The local port the client connects from (0 until reserved). */
  port: number;
  /** The tcp-lane message's resends (null until the port is reserved). */
  resend: Resend | null;
  /** The agent answered and the lane is being connected: its later answers are resends. */
  dialing: boolean;
}

/** A direct TCP lane (tcp-lane.ts) or a relay lane through the server (relay-lanes.ts). */
export type LaneKind = 'tcp' | 'relay-lane';

/** The client's relay lane offer, from the offer to the lane opening or failing. */
export interface RelayLaneOffer {
  readonly lane: Buffer;
  readonly token: Buffer;
  readonly resend: Resend;
  /** The agent answered and the lane is being connected: its later answers are resends. */
  dialing: boolean;
}

/** The client's record of a stream it opened. */
export interface OpenerRecord extends StreamRecordBase {
  readonly role: 'client';
  /** The carrier switch in progress, if any. */
  switching: CarrierSwitch | null;
  /** The lane offer in progress, if any. */
  laneOffer: LaneOffer | null;
  /** The relay lane offer in progress, if any. */
  relayOffer: RelayLaneOffer | null;
}

/** The agent's record of a stream it accepted. */
export interface AcceptorRecord extends StreamRecordBase {
  readonly role: 'agent';
  /** The accept message, resent if the client's open is resent. */
  readonly accept: StreamAccept;
  /** Carrier ids already answered, with the answer, so resends are answered again. */
  readonly answered: Map<number, CarrierAck>;
  /**
   * Lane offers answered (by the client's token, or "relay:" and the lane id), so resends get the
   * same answer (null: not yet).
   */
  readonly laneAnswers: Map<string, TcpLaneAck | RelayLaneAck | null>;
}

export type StreamRecord = OpenerRecord | AcceptorRecord;

export const streamKey = (peer: string, sid: bigint): string => `${peer}/${sid.toString(16)}`;

/**
 * The abort of a stream's lane attempts. Up to MAX_LANE_ATTEMPTS (16) may wait on it at once,
 * each with its own listener, which Node would otherwise report as a leak past 10.
 */
function laneAbortController(): AbortController {
  const c = new AbortController();
  setMaxListeners(32, c.signal);
  return c;
}

export function openerRecord(peer: string, sid: bigint, session: ResumableSession): OpenerRecord {
  return { role: 'client', sid, peer, session, lane: null, laneKind: null, laneAbort: laneAbortController(), switching: null, laneOffer: null, relayOffer: null };
}

export function acceptorRecord(peer: string, sid: bigint, session: ResumableSession, accept: StreamAccept): AcceptorRecord {
  return {
    role: 'agent',
    sid,
    peer,
    session,
    lane: null,
    laneKind: null,
    laneAbort: laneAbortController(),
    accept,
    answered: new Map(),
    laneAnswers: new Map(),
  };
}
