// A PeerNode for loopback tests: joins the test server, offers only 127.0.0.1, no STUN, a short
// netcheck, no TCP lanes unless asked.
import { NodeKey } from '../../src/identity/node-key.js';
import { PeerNode, type PeerNodeOptions } from '../../src/node/peer-node.js';
import type { TestServer } from '../server/helpers.js';

export function loopbackNode(t: TestServer, token: string, role: 'agent' | 'client', extra: Partial<PeerNodeOptions> = {}): Promise<PeerNode> {
  return PeerNode.start({
    server: t.server.url,
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
