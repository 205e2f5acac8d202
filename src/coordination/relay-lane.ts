// Relay lanes: a byte stream between two tunnel peers through the coordination server, for a
// stream that has no direct path. Relayed datagrams (one WebSocket frame each, fed to UDX through
// a loopback shim) cost a kernel round trip and UDX's congestion control per 1.2 KB on top of
// TCP; a lane lets the server splice two TCP connections and the peers' kernels do the rest.
//
// Each peer makes an HTTP upgrade request to RELAY_LANE_PATH with its own token (as for
// PROTOCOL_PATH), its role (ROLE_HEADER) and:
//   x-traverse-lane  the lane id (32 hex digits), which the client picked at random and sent the
//                    agent in a sealed stream-control message: only the two peers know it
//   x-traverse-node  the node key of the asking node (64 hex), connected now with that token
//   x-traverse-peer  the node key of the other end, which must share a tunnel with it
// The server holds the first request until the other end asks for the same lane the other way
// round, then answers both with `101 Switching Protocols` (Upgrade: RELAY_LANE_UPGRADE) and
// copies bytes between them, within the sender's relay budget. An unmatched request gets 504
// after the wait; any other refusal a 4xx with a JSON body {error, message}.
//
// What crosses a lane is what crosses a TCP lane: the lane proof (tcp-lane.ts) then the
// stream's sealed frames (tunnel/frames.ts). The server sees neither keys nor plaintext.
export const RELAY_LANE_PATH = '/api/v1/relay-lane';
export const RELAY_LANE_UPGRADE = 'traverse-lane';
export const LANE_ID_HEADER = 'x-traverse-lane';
export const LANE_NODE_HEADER = 'x-traverse-node';
export const LANE_PEER_HEADER = 'x-traverse-peer';

const LANE_ID = /^[0-9a-f]{32}$/;
const NODE_KEY = /^[0-9a-f]{64}$/;

export interface LaneRequest {
  readonly lane: string;
  readonly node: string;
  readonly peer: string;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The lane a request asks for, or why it is not a lane request. */
export function parseLaneRequest(headers: Record<string, string | string[] | undefined>): LaneRequest | string {
  const lane = one(headers[LANE_ID_HEADER]);
  const node = one(headers[LANE_NODE_HEADER]);
  const peer = one(headers[LANE_PEER_HEADER]);
  if (!lane || !LANE_ID.test(lane)) return `${LANE_ID_HEADER} must be 32 lowercase hex digits`;
  if (!node || !NODE_KEY.test(node)) return `${LANE_NODE_HEADER} must be a node key (64 lowercase hex digits)`;
  if (!peer || !NODE_KEY.test(peer)) return `${LANE_PEER_HEADER} must be a node key (64 lowercase hex digits)`;
  if (node === peer) return 'a lane joins two different nodes';
  return { lane, node, peer };
}
