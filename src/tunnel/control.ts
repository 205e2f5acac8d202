// Stream control: the messages that set up the UDX streams ("carriers") and TCP lanes that carry
// an encrypted stream. They travel as disco's opaque payload (sealed with the peers' keys,
// unreliable: each request is resent until answered, see resend.ts); disco never reads them.
//
//   type (1) | version (1) | sid (8) | body
//
//   stream-open    1  carrier (4) | handshake        "open a stream; here is Noise IK message 1"
//   stream-accept  2  carrier (4) | handshake        "accepted; Noise IK message 2"
//   stream-refuse  3  reason (UTF-8)                 "no, because ..."
//   carrier        4  carrier (4)                    "carry stream sid on my new UDX stream"
//   carrier-ack    5  carrier (4) | yours (4)        "here is mine for your carrier <yours>"
//   tcp-lane       6  port (2) | token (16)          "carry sid over TCP too: I connect from
//                                                     <port>; send me <token> to prove it is you"
//   tcp-lane-ack   7  port (2) | listen (2)          "and I from <port>; I also listen on
//                     | token (16)                    <listen>; send me <token>"
//   relay-lane     8  lane (16) | token (16)        "carry sid over a relay lane too: ask the server
//                                                     to join you to lane <lane>; send me <token>"
//   relay-lane-ack 9  lane (16) | token (16)        "I am asking for <lane> too; send me <token>"
//   lane-claim    10  spare (8)                     "carry sid on the spare TCP lane <spare>" (a
//                                                     lane opened ahead with tcp-lane, sid = spare)
//
// sid names the stream (the client picks it at random); carrier is the sender's UDX stream id;
// a handshake is 1 to MAX_HANDSHAKE_BYTES bytes, a reason at most MAX_REFUSE_REASON_BYTES.

export const CONTROL_VERSION = 1;

/** The secret each side of a TCP lane must send first on the connection. */
export const LANE_TOKEN_BYTES = 16;
export const MAX_HANDSHAKE_BYTES = 512;
export const MAX_REFUSE_REASON_BYTES = 200;

export const ControlType = {
  streamOpen: 1,
  streamAccept: 2,
  streamRefuse: 3,
  carrier: 4,
  carrierAck: 5,
  tcpLane: 6,
  tcpLaneAck: 7,
  relayLane: 8,
  relayLaneAck: 9,
  laneClaim: 10,
} as const;

const HEADER_BYTES = 10;

/** The client opens stream `sid`: its carrier's id, and Noise IK message 1 (carrying the request). */
export interface StreamOpen {
  readonly type: 'stream-open';
  readonly sid: bigint;
  readonly carrier: number;
  readonly handshake: Uint8Array;
}

/** The agent accepts: its carrier's id, and Noise IK message 2 (carrying the response). */
export interface StreamAccept {
  readonly type: 'stream-accept';
  readonly sid: bigint;
  readonly carrier: number;
  readonly handshake: Uint8Array;
}

/** No such stream, or not here: the reason is for the user. */
export interface StreamRefuse {
  readonly type: 'stream-refuse';
  readonly sid: bigint;
  readonly reason: string;
}

/** The client asks the agent to carry the stream on the client's new UDX stream `carrier`. */
export interface Carrier {
  readonly type: 'carrier';
  readonly sid: bigint;
  readonly carrier: number;
}

/** The agent's new UDX stream `carrier`, for the client's carrier `yours`. */
export interface CarrierAck {
  readonly type: 'carrier-ack';
  readonly sid: bigint;
  readonly carrier: number;
  readonly yours: number;
}

/** The client offers a TCP lane: it connects from `port` and wants `token` first. */
export interface TcpLane {
  readonly type: 'tcp-lane';
  readonly sid: bigint;
  readonly port: number;
  readonly token: Uint8Array;
}

/** The agent's answer: it connects from `port`, listens on `listenPort`, and wants `token` first. */
export interface TcpLaneAck {
  readonly type: 'tcp-lane-ack';
  readonly sid: bigint;
  readonly port: number;
  readonly listenPort: number;
  readonly token: Uint8Array;
}

/**
 * The client offers a relay lane (a byte stream through the coordination server, see
 * relay-lanes.ts): both ask the server for lane `lane`, and the client wants `token` first.
 */
export interface RelayLane {
  readonly type: 'relay-lane';
  readonly sid: bigint;
  readonly lane: Uint8Array;
  readonly token: Uint8Array;
}

/** The agent's answer: it asks for lane `lane` as well, and wants `token` first. */
export interface RelayLaneAck {
  readonly type: 'relay-lane-ack';
  readonly sid: bigint;
  readonly lane: Uint8Array;
  readonly token: Uint8Array;
}

/** The client puts stream `sid` on the spare TCP lane it opened ahead as `spare` (spare-lanes.ts). */
export interface LaneClaim {
  readonly type: 'lane-claim';
  readonly sid: bigint;
  readonly spare: bigint;
}

export type StreamControl = StreamOpen | StreamAccept | StreamRefuse | Carrier | CarrierAck | TcpLane | TcpLaneAck | RelayLane | RelayLaneAck | LaneClaim;

/** A message of `type` for stream `sid` with `bodyBytes` after the header. */
function withHeader(type: number, sid: bigint, bodyBytes: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + bodyBytes);
  b[0] = type;
  b[1] = CONTROL_VERSION;
  b.writeBigUInt64BE(sid, 2);
  return b;
}

// ---- one marshal and one parse per message; a parse gets the sid and the body after the header ----

function marshalHandshake(type: number, m: StreamOpen | StreamAccept): Buffer {
  if (m.handshake.length > MAX_HANDSHAKE_BYTES) throw new Error('stream control: handshake message too large');
  const b = withHeader(type, m.sid, 4 + m.handshake.length);
  b.writeUInt32BE(m.carrier >>> 0, HEADER_BYTES);
  b.set(m.handshake, HEADER_BYTES + 4);
  return b;
}

function parseHandshake(body: Buffer): { carrier: number; handshake: Uint8Array } | null {
  if (body.length < 4) return null;
  const handshake = new Uint8Array(body.subarray(4));
  if (handshake.length === 0 || handshake.length > MAX_HANDSHAKE_BYTES) return null;
  return { carrier: body.readUInt32BE(0), handshake };
}

function marshalStreamOpen(m: StreamOpen): Buffer {
  return marshalHandshake(ControlType.streamOpen, m);
}

function parseStreamOpen(sid: bigint, body: Buffer): StreamOpen | null {
  const h = parseHandshake(body);
  return h ? { type: 'stream-open', sid, ...h } : null;
}

function marshalStreamAccept(m: StreamAccept): Buffer {
  return marshalHandshake(ControlType.streamAccept, m);
}

function parseStreamAccept(sid: bigint, body: Buffer): StreamAccept | null {
  const h = parseHandshake(body);
  return h ? { type: 'stream-accept', sid, ...h } : null;
}

function marshalStreamRefuse(m: StreamRefuse): Buffer {
  const reason = Buffer.from(m.reason, 'utf8').subarray(0, MAX_REFUSE_REASON_BYTES);
  const b = withHeader(ControlType.streamRefuse, m.sid, reason.length);
  reason.copy(b, HEADER_BYTES);
  return b;
}

function parseStreamRefuse(sid: bigint, body: Buffer): StreamRefuse | null {
  return body.length <= MAX_REFUSE_REASON_BYTES ? { type: 'stream-refuse', sid, reason: body.toString('utf8') } : null;
}

function marshalCarrier(m: Carrier): Buffer {
  const b = withHeader(ControlType.carrier, m.sid, 4);
  b.writeUInt32BE(m.carrier >>> 0, HEADER_BYTES);
  return b;
}

function parseCarrier(sid: bigint, body: Buffer): Carrier | null {
  return body.length === 4 ? { type: 'carrier', sid, carrier: body.readUInt32BE(0) } : null;
}

function marshalCarrierAck(m: CarrierAck): Buffer {
  const b = withHeader(ControlType.carrierAck, m.sid, 8);
  b.writeUInt32BE(m.carrier >>> 0, HEADER_BYTES);
  b.writeUInt32BE(m.yours >>> 0, HEADER_BYTES + 4);
  return b;
}

function parseCarrierAck(sid: bigint, body: Buffer): CarrierAck | null {
  return body.length === 8 ? { type: 'carrier-ack', sid, carrier: body.readUInt32BE(0), yours: body.readUInt32BE(4) } : null;
}

function checkToken(token: Uint8Array): void {
  if (token.length !== LANE_TOKEN_BYTES) throw new Error(`stream control: a lane token is ${LANE_TOKEN_BYTES} bytes`);
}

function marshalTcpLane(m: TcpLane): Buffer {
  checkToken(m.token);
  const b = withHeader(ControlType.tcpLane, m.sid, 2 + LANE_TOKEN_BYTES);
  b.writeUInt16BE(m.port, HEADER_BYTES);
  b.set(m.token, HEADER_BYTES + 2);
  return b;
}

function parseTcpLane(sid: bigint, body: Buffer): TcpLane | null {
  if (body.length !== 2 + LANE_TOKEN_BYTES) return null;
  const port = body.readUInt16BE(0);
  return port === 0 ? null : { type: 'tcp-lane', sid, port, token: new Uint8Array(body.subarray(2)) };
}

function marshalTcpLaneAck(m: TcpLaneAck): Buffer {
  checkToken(m.token);
  const b = withHeader(ControlType.tcpLaneAck, m.sid, 4 + LANE_TOKEN_BYTES);
  b.writeUInt16BE(m.port, HEADER_BYTES);
  b.writeUInt16BE(m.listenPort, HEADER_BYTES + 2);
  b.set(m.token, HEADER_BYTES + 4);
  return b;
}

function parseTcpLaneAck(sid: bigint, body: Buffer): TcpLaneAck | null {
  if (body.length !== 4 + LANE_TOKEN_BYTES) return null;
  const port = body.readUInt16BE(0);
  const listenPort = body.readUInt16BE(2);
  if (port === 0 || listenPort === 0) return null;
  return { type: 'tcp-lane-ack', sid, port, listenPort, token: new Uint8Array(body.subarray(4)) };
}

function marshalRelayLane(type: number, m: RelayLane | RelayLaneAck): Buffer {
  checkToken(m.token);
  if (m.lane.length !== LANE_TOKEN_BYTES) throw new Error(`stream control: a lane id is ${LANE_TOKEN_BYTES} bytes`);
  const b = withHeader(type, m.sid, 2 * LANE_TOKEN_BYTES);
  b.set(m.lane, HEADER_BYTES);
  b.set(m.token, HEADER_BYTES + LANE_TOKEN_BYTES);
  return b;
}

function parseRelayLaneBody(body: Buffer): { lane: Uint8Array; token: Uint8Array } | null {
  if (body.length !== 2 * LANE_TOKEN_BYTES) return null;
  return { lane: new Uint8Array(body.subarray(0, LANE_TOKEN_BYTES)), token: new Uint8Array(body.subarray(LANE_TOKEN_BYTES)) };
}

function parseRelayLane(sid: bigint, body: Buffer): RelayLane | null {
  const b = parseRelayLaneBody(body);
  return b ? { type: 'relay-lane', sid, ...b } : null;
}

function parseRelayLaneAck(sid: bigint, body: Buffer): RelayLaneAck | null {
  const b = parseRelayLaneBody(body);
  return b ? { type: 'relay-lane-ack', sid, ...b } : null;
}

function marshalLaneClaim(m: LaneClaim): Buffer {
  const b = withHeader(ControlType.laneClaim, m.sid, 8);
  b.writeBigUInt64BE(m.spare, HEADER_BYTES);
  return b;
}

function parseLaneClaim(sid: bigint, body: Buffer): LaneClaim | null {
  return body.length === 8 ? { type: 'lane-claim', sid, spare: body.readBigUInt64BE(0) } : null;
}

// ----

/** The bytes of a control message; throws for one that cannot be sent (a bad token, too long). */
export function encodeControl(m: StreamControl): Buffer {
  switch (m.type) {
    case 'stream-open':
      return marshalStreamOpen(m);
    case 'stream-accept':
      return marshalStreamAccept(m);
    case 'stream-refuse':
      return marshalStreamRefuse(m);
    case 'carrier':
      return marshalCarrier(m);
    case 'carrier-ack':
      return marshalCarrierAck(m);
    case 'tcp-lane':
      return marshalTcpLane(m);
    case 'tcp-lane-ack':
      return marshalTcpLaneAck(m);
    case 'relay-lane':
      return marshalRelayLane(ControlType.relayLane, m);
    case 'relay-lane-ack':
      return marshalRelayLane(ControlType.relayLaneAck, m);
    case 'lane-claim':
      return marshalLaneClaim(m);
  }
}

/** Parses a control message; null for anything malformed (a silent drop, as for disco). */
export function decodeControl(b: Uint8Array): StreamControl | null {
  if (b.length < HEADER_BYTES || b[1] !== CONTROL_VERSION) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const sid = buf.readBigUInt64BE(2);
  const body = buf.subarray(HEADER_BYTES);
  switch (b[0]) {
    case ControlType.streamOpen:
      return parseStreamOpen(sid, body);
    case ControlType.streamAccept:
      return parseStreamAccept(sid, body);
    case ControlType.streamRefuse:
      return parseStreamRefuse(sid, body);
    case ControlType.carrier:
      return parseCarrier(sid, body);
    case ControlType.carrierAck:
      return parseCarrierAck(sid, body);
    case ControlType.tcpLane:
      return parseTcpLane(sid, body);
    case ControlType.tcpLaneAck:
      return parseTcpLaneAck(sid, body);
    case ControlType.relayLane:
      return parseRelayLane(sid, body);
    case ControlType.relayLaneAck:
      return parseRelayLaneAck(sid, body);
    case ControlType.laneClaim:
      return parseLaneClaim(sid, body);
    default:
      return null;
  }
}
