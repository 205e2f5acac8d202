// What an agent serves (what `traverse agent` runs): streams its clients open, checked against
// its allow list and connected to targets inside the workspace, plus speed tests.
import { AllowList } from '../tunnel/allow-list.js';
import { serveRequest } from '../tunnel/services.js';
import type { PeerNode, PeerNodeOptions } from './peer-node.js';

export { AllowListError, DEFAULT_ALLOWED_TARGETS } from '../tunnel/allow-list.js';

export interface AgentService {
  /** The allow-list patterns in force, as given. */
  readonly allowed: readonly string[];
  /** For PeerNodeOptions.acceptStream. */
  readonly acceptStream: NonNullable<PeerNodeOptions['acceptStream']>;
}

/**
 * The agent's request serving. `allowTargets`: HOST:PORT patterns (IP, CIDR, host name or *,
 * with a port, a-b or *); default DEFAULT_ALLOWED_TARGETS. Throws AllowListError on a bad one.
 */
export function agentService(allowTargets?: readonly string[]): AgentService {
  const allow = allowTargets ? new AllowList(allowTargets) : new AllowList();
  return {
    allowed: allow.patterns,
    acceptStream: (_peer, request) => serveRequest(request, allow),
  };
}

/** Where a node can be reached: its UDP port and the endpoints it publishes. */
export interface NodeAddresses {
  readonly port: number;
  readonly endpoints: readonly string[];
}

export function nodeAddresses(node: PeerNode): NodeAddresses {
  return { port: node.magicsock.port, endpoints: [...node.magicsock.endpoints] };
}
