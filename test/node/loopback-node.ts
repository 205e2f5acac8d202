// A PeerNode for loopback tests: joins the test server (or servers given by URL), offers only 127.0.0.1, no STUN, a short
// netcheck, no TCP lanes unless asked.
import { NodeKey } from '../../src/identity/node-key.js';
import { PeerNode, type PeerNodeOptions } from '../../src/node/peer-node.js';
import { agentService } from '../../src/node/agent.js';
import { startTestServer, type ServerOverrides, type TestServer } from '../server/helpers.js';

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

/** An agent "ws1" and a client "laptop" allowed to it, on a test server of their own, tunnel open. */
export interface LoopbackPair {
  readonly t: TestServer;
  readonly agent: PeerNode;
  readonly client: PeerNode;
  /** The agent's node key, as the client's tunnel knows it. */
  readonly agentKey: string;
  close(): Promise<void>;
}

export async function loopbackPair(
  opts: { allow?: string[]; server?: ServerOverrides; client?: Partial<PeerNodeOptions>; agent?: Partial<PeerNodeOptions> } = {},
): Promise<LoopbackPair> {
  const t = await startTestServer(opts.server);
  let agent: PeerNode | undefined;
  let client: PeerNode | undefined;
  try {
    const agentToken = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    agent = await loopbackNode(t, agentToken, 'agent', { acceptStream: agentService(opts.allow ?? ['127.0.0.1:*']).acceptStream, ...opts.agent });
    client = await loopbackNode(t, clientToken, 'client', opts.client);
    const agentKey = (await client.openTunnel('ws1', 5000)).key;
    const [a, c] = [agent, client];
    return {
      t,
      agent: a,
      client: c,
      agentKey,
      async close() {
        c.close();
        a.close();
        await t.close();
      },
    };
  } catch (err) {
    client?.close();
    agent?.close();
    await t.close();
    throw err;
  }
}
