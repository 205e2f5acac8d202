// The embedded STUN server for `traverse server --stun-listen`: the STUN layer's server,
// with its metrics on the coordinator's registry so /metrics shows both.
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { startStunServer } from '../stun/server.js';

export interface RunningStunServer {
  /** The bound UDP address (the real port when 0 was asked for). */
  readonly address: { readonly address: string; readonly port: number };
  close(): Promise<void>;
}

export async function startEmbeddedStun(options: {
  listen: { address: string; port: number };
  logger?: Logger;
  registry?: Registry;
}): Promise<RunningStunServer> {
  const server = await startStunServer(options);
  return { address: server.address, close: () => server.close() };
}
