// Starts the embedded STUN server (src/stun/server.ts, another layer's work) for
// `traverse server --stun-listen`. The import is resolved at run time so that the
// coordinator builds and runs without it when --stun-listen is not used.
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';

export interface StunServerOptions {
  listen: { address: string; port: number };
  altAddress?: string;
  altPort?: number;
  tcp?: boolean;
  rateLimit?: number;
  logger?: Logger;
  registry?: Registry;
}

export interface RunningStunServer {
  close(): Promise<void>;
}

type StartStunServer = (options: StunServerOptions) => Promise<RunningStunServer>;

export async function startEmbeddedStun(options: StunServerOptions): Promise<RunningStunServer> {
  const specifier = '../stun/server.js';
  let mod: { startStunServer?: StartStunServer };
  try {
    mod = (await import(specifier)) as { startStunServer?: StartStunServer };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error('this build has no embedded STUN server (src/stun/server.ts); run without --stun-listen');
    }
    throw err;
  }
  if (typeof mod.startStunServer !== 'function') {
    throw new Error('src/stun/server.ts does not export startStunServer; run without --stun-listen');
  }
  return mod.startStunServer(options);
}
