// A one-off netcheck from this machine (what `traverse netcheck` runs): binds its own UDP
// sockets (IPv4 and/or IPv6, as the servers need), runs the netchecker over them and closes
// them again. A running PeerNode does its netcheck over its own socket instead.
import { createSocket, type Socket } from 'node:dgram';
import type { Endpoint } from '../net/endpoint.js';
import { Netchecker, type NetcheckReport, type NetcheckSocket } from '../netcheck/index.js';
import { StunClient } from '../stun/client.js';
import { bindingOverTcp } from '../stun/tcp-client.js';
import { formatEndpoint } from '../net/endpoint.js';
import { surveyPortMapping } from '../portmap/survey.js';

export interface LocalNetcheckOptions {
  /** Total time budget (ms); blocked UDP is reported within it. */
  readonly timeoutMs: number;
  /** Probe from this local UDP port (the port a node would use; default: any). */
  readonly localPort?: number;
  /** Progress messages, for a terminal. */
  readonly onProgress?: (message: string) => void;
  /** Also ask the default gateway what it maps (PCP, NAT-PMP, UPnP), for this socket's port. */
  readonly portMapping?: boolean;
}

async function bindUdp(type: 'udp4' | 'udp6', port: number): Promise<Socket> {
  const s = createSocket(type);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, () => resolve());
  });
  s.on('error', () => undefined); // ICMP errors show up as unanswered probes
  return s;
}

/** Probes the given (resolved) STUN servers; an empty list reports UDP as unknown/blocked. */
export async function runLocalNetcheck(servers: readonly Endpoint[], options: LocalNetcheckOptions): Promise<NetcheckReport> {
  const sockets: Socket[] = [];
  const clients: StunClient[] = [];
  const make = async (type: 'udp4' | 'udp6'): Promise<NetcheckSocket> => {
    const s = await bindUdp(type, options.localPort ?? 0);
    sockets.push(s);
    const stun = new StunClient(s);
    clients.push(stun);
    return {
      stun,
      send: (b, port, address) => s.send(b, port, address),
      local: () => s.address(),
    };
  };
  try {
    // Port mapping is about an IPv4 socket: one is opened for it even without IPv4 STUN servers.
    const v4 = servers.some((s) => s.family === 4) || options.portMapping ? await make('udp4') : undefined;
    const v6 = servers.some((s) => s.family === 6) ? await make('udp6') : undefined;
    const checker = new Netchecker(
      { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) },
      {
        timeoutMs: options.timeoutMs,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        // A diagnosis can wait longer for the gateway than a node's quick probe (~250 ms).
        ...(options.portMapping && v4
          ? { portMapping: () => surveyPortMapping(v4.local()!.port, { client: { probeMs: Math.min(1000, Math.round(options.timeoutMs / 3)) } }) }
          : {}),
      },
    );
    sockets.forEach((s, i) =>
      s.on('message', (m, rinfo) => {
        if (!checker.handleDatagram(m)) clients[i]!.handleDatagram(m, rinfo);
      }),
    );
    return await checker.run(servers);
  } finally {
    for (const c of clients) c.close();
    for (const s of sockets) s.close();
  }
}

/**
 * For STUN servers that did not answer over UDP: does each answer a Binding over TCP? One that
 * does is up, so its silence over UDP means UDP is blocked here; one that does not may be down.
 * Keyed like NetcheckReport.servers' addresses.
 */
export async function stunOverTcp(servers: readonly Endpoint[], timeoutMs: number): Promise<Map<string, boolean>> {
  const answers = await Promise.all(
    servers.map((s) =>
      bindingOverTcp({ address: s.address, port: s.port }, { timeoutMs }).then(
        () => true,
        () => false,
      ),
    ),
  );
  return new Map(servers.map((s, i) => [formatEndpoint(s.address, s.port), answers[i]!]));
}
