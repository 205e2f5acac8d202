// What the coordination server tells a tool that does not join as a node (netcheck): the STUN
// servers it would give a node, and how far away it is. The relay runs on the server, so the
// round trip of a small HTTP request there is the relay's latency from this machine.
import { networkConfig, type NetworkConfig } from '../coordination/views.js';
import type { Agent } from 'node:http';
import type { Trust } from '../net/tls-trust.js';
import { getJson, HttpGetError, keepAliveAgent, type GetResult } from '../net/http-get.js';

export interface ServerInfo {
  readonly config: NetworkConfig;
  /** The fastest of a few round trips of GET /api/v1/config (ms): the relay's latency from here. */
  readonly latencyMs: number;
}

export class ServerInfoError extends Error {}

export async function fetchServerInfo(server: URL, token: string, timeoutMs = 3000, rounds = 3, trust?: Trust): Promise<ServerInfo> {
  const url = new URL('/api/v1/config', server);
  url.protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol;
  // One connection for all rounds: the first pays for TCP (and TLS), the best round is the trip.
  const agent = keepAliveAgent(url, trust);
  try {
    return await measureRounds(url, token, timeoutMs, rounds, agent, trust);
  } finally {
    agent.destroy();
  }
}

async function measureRounds(url: URL, token: string, timeoutMs: number, rounds: number, agent: Agent, trust: Trust | undefined): Promise<ServerInfo> {
  let best = Infinity;
  let config: NetworkConfig | undefined;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    let res: GetResult;
    try {
      res = await getJson(url, token, { timeoutMs, agent, ...(trust ? { trust } : {}) });
    } catch (err) {
      if (!(err instanceof HttpGetError)) throw err;
      throw new ServerInfoError(`cannot reach ${url.origin} (${err.reason})`);
    }
    const body = res.body;
    best = Math.min(best, performance.now() - t0);
    if (res.status < 200 || res.status > 299) {
      const message = (body as { message?: unknown } | undefined)?.message;
      throw new ServerInfoError(`${url.origin} answered HTTP ${res.status}${typeof message === 'string' ? `: ${message}` : ''}`);
    }
    const parsed = networkConfig.safeParse(body);
    if (!parsed.success) throw new ServerInfoError(`${url.origin} sent a configuration this version does not understand`);
    config = parsed.data;
  }
  return { config: config!, latencyMs: Math.round(best * 100) / 100 };
}
