// The coordination protocol, version 1: the one definition shared by the server and the
// CoordinatorClient. Every message that crosses the wire is parsed by a schema below before
// it touches any state.
//
// Transport: one WebSocket per peer at PROTOCOL_PATH, `Authorization: Bearer <token>` on the
// upgrade request (401 before the upgrade if the token is wrong, expired or revoked).
//
//   text frames   JSON coordination messages (ClientMessage up, ServerMessage down),
//                 at most MAX_TEXT_BYTES each.
//   binary frames relay datagrams:
//                   up   [32-byte destination node key][payload]
//                   down [32-byte source node key][payload]
//                 payload at most MAX_RELAY_PAYLOAD bytes; the server never reads it
//                 (the frame codec is relay-frame.ts). A node that asks for it on its upgrade
//                 request gets relay batches instead, several datagrams a frame (relay-batch.ts).
//
// Up (peer -> server):
//   node      publish this peer's node: key, endpoints, preferred relay, time, netcheck summary
//   tunnel    (clients only) ask for a tunnel to an agent by name
//   untunnel  (clients only) drop that tunnel
//   path      report which path a tunnel to a peer uses: direct with endpoint, or relay
// Down (server -> peer):
//   config    sent once at connect: who you are, STUN servers, relay, direct blocked or not
//   peers     updates about tunnel peers: node | disconnected (clean close) | lost (stopped answering)
//   tunnel    the state of a tunnel this client asked for: open | waiting (agent offline) | refused
//   error     a request was refused; the connection stays open
import * as z from 'zod';
import { keyChallenge, keyProofText } from './key-proof.js';
import { isUsableEndpoint } from '../net/unicast.js';
import type { Path as NetPath } from '../net/path.js';

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_PATH = '/api/v1/coordinate';

export const NODE_KEY_BYTES = 32;
export const MAX_RELAY_PAYLOAD = 4096;
export const MAX_TEXT_BYTES = 16 * 1024;
/** The largest frame a node reads from its server; a larger one closes the connection (1009). */
export const MAX_SERVER_FRAME_BYTES = 1 << 20;
/**
 * The most node updates in one `peers` message. A node is published in one text message of at
 * most MAX_TEXT_BYTES, so 32 of them stay well under MAX_SERVER_FRAME_BYTES; a longer list (an
 * agent that comes back to many waiting clients) goes in several messages.
 */
export const MAX_PEER_UPDATES_PER_MESSAGE = 32;
export const MAX_ENDPOINTS = 32;
export const MAX_NAME_LENGTH = 64;
/** A relay reason a node reports with its path: one or two sentences. */
export const MAX_REASON_LENGTH = 512;

/** WebSocket close codes the server uses, with why. 1008/1009 are the standard ones. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008, // malformed message, rate limit, protocol misuse
  tooBig: 1009, // frame larger than the protocol allows
  revoked: 4001, // the token was revoked or expired while connected: do not reconnect
  replaced: 4002, // a newer agent process of the same identity took over: do not reconnect
  tooManyNodes: 4003, // the identity has as many live nodes as the server allows: do not reconnect
  wrongRole: 4004, // the token's kind does not fit the role the node asked for: do not reconnect
  keyProof: 4005, // the node could not prove it holds its key, or the key is another identity's: do not reconnect
} as const;

/**
 * The role a node asks for, in the ROLE_HEADER of the upgrade request. The server refuses (403)
 * a token whose kind is not that role before anything changes: a `ping` run with an agent's token
 * must not replace the running agent.
 */
export const ROLE_HEADER = 'x-traverse-role';

/** At most this many nodes (processes) of one client identity are connected at once. */
export const MAX_NODES_PER_CLIENT = 64;

/** Identity names: what an operator types on the command line. */
export const identityName = z
  .string()
  .min(1)
  .max(MAX_NAME_LENGTH)
  .regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

/** A 32-byte X25519 public key as 64 lowercase hex characters. */
export const nodeKey = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters (a 32-byte X25519 key)');
export type NodeKeyHex = z.infer<typeof nodeKey>;

/**
 * "203.0.113.7:41641" or "[2001:db8::1]:41641": literal unicast addresses only, never names, and
 * a port from 1 to 65535. The server refuses anything else before passing it on, so a peer can
 * never be made to aim at 999.999.999.999:99999, port 0, a broadcast or a multicast address.
 */
export const endpointText = z
  .string()
  .max(64)
  .regex(/^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/, 'IP:PORT or [IPv6]:PORT')
  .refine(isUsableEndpoint, 'a unicast IP address and a port from 1 to 65535');

const natBehaviour = z.enum(['endpoint-independent', 'address-dependent', 'address-and-port-dependent', 'unknown']);

/**
 * What a peer found out about its network, so the other side (and the user) can be told
 * why a tunnel is relayed. Every field is optional: absent means "not measured".
 */
export const netcheckSummary = z.object({
  udp: z.boolean().optional(),
  mapping: natBehaviour.optional(),
  filtering: natBehaviour.optional(),
  hairpinning: z.boolean().nullable().optional(),
  globalV4: endpointText.nullable().optional(),
  globalV6: endpointText.nullable().optional(),
  preferredStun: z.string().max(128).nullable().optional(),
  /** STUN servers (HOST:PORT) that did not answer this netcheck, for the operator's health view. */
  stunUnanswered: z.array(z.string().max(128)).max(16).optional(),
  /**
   * The port mapping the node's router made (PCP, NAT-PMP or UPnP IGD), for the operators' view:
   * its external endpoint and whether it is trusted (its address is what STUN saw). Absent: port
   * mapping was not looked at; null: none was made.
   */
  portMapping: z
    .object({ protocol: z.enum(['pcp', 'natpmp', 'upnp']), external: z.string().max(64), trusted: z.boolean().nullable() })
    .nullable()
    .optional(),
});
export type NetcheckSummary = z.infer<typeof netcheckSummary>;

export const node = z.object({
  key: nodeKey,
  endpoints: z.array(endpointText).max(MAX_ENDPOINTS),
  /** The relay this peer prefers to be reached through ("default": this server's relay). */
  preferredRelay: z.string().max(MAX_NAME_LENGTH).nullable(),
  /** When the peer produced this update, ms since the epoch (the peer's clock). */
  updatedAt: z.number().int().nonnegative(),
  netcheck: netcheckSummary.optional(),
});
export type Node = z.infer<typeof node>;

export const path = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('direct'), endpoint: endpointText, transport: z.literal('tcp').optional() }),
  z.object({ kind: z.literal('relay') }),
]);
/** The one Path type, src/net/path.ts's: this fails to compile if the schema above parses to another shape. */
export type Path = SameShape<NetPath, z.infer<typeof path>>;
type SameShape<A extends B, B extends C, C = A> = A;

/** How many streams of a tunnel each carrier holds: TCP lanes, or UDX over the tunnel's path. */
export const streamCarriers = z.object({ tcp: z.number().int().nonnegative().max(1_000_000), udx: z.number().int().nonnegative().max(1_000_000) });
export type StreamCarriers = z.infer<typeof streamCarriers>;

export const peerKind = z.enum(['agent', 'client']);
export type PeerKind = z.infer<typeof peerKind>;

// ---- peer -> server ----

export const clientMessage = z.discriminatedUnion('type', [
  /** The first `node` of a connection carries the proof of its key (key-proof.ts). */
  z.object({ type: z.literal('node'), node, proof: keyProofText.optional() }),
  z.object({ type: z.literal('tunnel'), agent: identityName }),
  z.object({ type: z.literal('untunnel'), agent: identityName }),
  /** rttMs: the path's round trip as the reporter measures it (direct paths), for the views. */
  /**
   * For the operators' dashboard: reason, for a relayed path, why in plain words (why-relayed.ts);
   * streams, how many of the tunnel's streams a TCP lane carries and how many UDX.
   */
  z.object({
    type: z.literal('path'),
    peer: nodeKey,
    path,
    rttMs: z.number().nonnegative().max(600_000).nullable().optional(),
    reason: z.string().max(MAX_REASON_LENGTH).optional(),
    streams: streamCarriers.optional(),
  }),
]);
export type ClientMessage = z.infer<typeof clientMessage>;

// ---- server -> peer ----

export const serverConfig = z.object({
  type: z.literal('config'),
  version: z.number().int(),
  identity: z.object({ name: identityName, kind: peerKind }),
  /** STUN servers as HOST:PORT; empty when STUN is disabled. */
  stun: z.array(z.string()),
  /**
   * frames: the relay frame format of this connection's binary frames, both ways: 2 (relay
   * batches, relay-batch.ts) when the node asked for it and the server speaks it; absent: 1.
   */
  relay: z.object({ enabled: z.boolean(), maxPayload: z.number().int(), frames: z.number().int().optional() }),
  /** When true peers must not try direct paths: everything goes through the relay. */
  blockDirect: z.boolean(),
  /** How often the server pings; a peer silent for two intervals is "lost". */
  pingIntervalMs: z.number().int(),
  /** What the node must answer in its first `node` message to prove it holds its key. */
  challenge: keyChallenge,
  /** Something the node's user should hear about this connection (an agent that replaced another). */
  notice: z.string().max(512).optional(),
});
export type ServerConfig = z.infer<typeof serverConfig>;

export const peerUpdate = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('node'),
    name: identityName,
    peerKind,
    node,
    /**
     * The IP address the server saw this node's coordination connection come from: an address
     * the server vouches for, which bounds where port prediction may aim (null: not known).
     */
    seenFrom: z.string().max(64).nullable().optional(),
  }),
  z.object({ kind: z.literal('disconnected'), name: identityName, peerKind, key: nodeKey.nullable() }),
  z.object({ kind: z.literal('lost'), name: identityName, peerKind, key: nodeKey.nullable() }),
]);
export type PeerUpdate = z.infer<typeof peerUpdate>;

export const tunnelStatus = z.enum(['open', 'waiting', 'refused', 'closed']);
export type TunnelStatus = z.infer<typeof tunnelStatus>;

export const serverMessage = z.discriminatedUnion('type', [
  serverConfig,
  z.object({ type: z.literal('peers'), updates: z.array(peerUpdate) }),
  z.object({ type: z.literal('tunnel'), agent: identityName, status: tunnelStatus, reason: z.string().optional() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ServerMessage = z.infer<typeof serverMessage>;

/** A one-line description of why a message failed validation, for close reasons and logs. */
export function describeIssues(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return 'invalid message';
  const where = first.path.length > 0 ? first.path.join('.') : 'message';
  return `${where}: ${first.message}`;
}
