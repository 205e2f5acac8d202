// A PeerNode for loopback tests: joins the test server (or servers given by URL), offers only 127.0.0.1, no STUN, a short
// netcheck, no TCP lanes unless asked.
import { NodeKey } from '../../src/identity/node-key.js';
import { PeerNode, type PeerNodeOptions } from '../../src/node/peer-node.js';
import type { TestServer } from '../server/helpers.js';

/** `at`: the test server, or the URL(s) of servers elsewhere (processes, replicas). */
export function loopbackNode(at: TestServer | PeerNodeOptions['server'], token: string, role: 'agent' | 'client', extra: Partial<PeerNodeOptions> = {}): Promise<PeerNode> {
  return PeerNode.start({
    server: typeof at === 'string' || Array.isArray(at) ? at : (at as TestServer).server.url,
    token,
    key: NodeKey.generate(),
    role,
    stun: { disabled: true, servers: [] },
    localAddresses: () => ['127.0.0.1'],
    netcheckTimeoutMs: 300,
    connectTimeoutMs: 5000,
    tcpLane: false,
    ...extra,
  });
}
