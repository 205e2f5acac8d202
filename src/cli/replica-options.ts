// `traverse server`'s replica flags. Several servers on one PostgreSQL database (--database) are
// replicas of each other; these say how the others reach this one's relay and with which key.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { parseMeshKey } from '../server/replica/mesh-auth.js';
import type { CoordinatorServerOptions } from '../server/server.js';
import { UsageError } from './errors.js';

export interface ReplicaFlags {
  meshUrl?: string;
  meshKeyFile?: string;
}

export function addReplicaOptions(cmd: Command): Command {
  return cmd
    .option(
      '--mesh-url <url>',
      'with --database: the http(s):// URL at which the other replicas reach this one to relay datagrams between them, published in the database (env TRAVERSE_MESH_URL; default http://THIS-HOST:PORT of --listen)',
    )
    .option(
      '--mesh-key-file <file>',
      'with --database: the key replicas prove to each other before relaying (hex or text, at least 32 bytes; env TRAVERSE_MESH_KEY_FILE; default: a key the first replica stores in the database)',
    );
}

/** The replication options for a server on `databaseUrl`, or undefined for a lone SQLite server. */
export function replicationFrom(flags: ReplicaFlags, databaseUrl: string | undefined): CoordinatorServerOptions['replication'] {
  const meshUrl = flags.meshUrl ?? process.env.TRAVERSE_MESH_URL;
  const keyFile = flags.meshKeyFile ?? process.env.TRAVERSE_MESH_KEY_FILE;
  if (databaseUrl === undefined) {
    if (flags.meshUrl !== undefined || flags.meshKeyFile !== undefined) {
      throw new UsageError('--mesh-url and --mesh-key-file are for replicas: add --database postgres://... (several servers on one database)');
    }
    return undefined;
  }
  if (meshUrl !== undefined) checkMeshUrl(meshUrl);
  let meshKey: Buffer | undefined;
  if (keyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--mesh-key-file ${keyFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    try {
      meshKey = parseMeshKey(text);
    } catch (err) {
      throw new UsageError(`--mesh-key-file ${keyFile}: ${(err as Error).message}`);
    }
  }
  return { databaseUrl, ...(meshUrl !== undefined ? { meshUrl } : {}), ...(meshKey ? { meshKey } : {}) };
}

function checkMeshUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--mesh-url "${value}" is not a URL; give http://HOST:PORT at which the other replicas reach this one`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new UsageError(`--mesh-url "${value}" must be http(s)://HOST:PORT with no path`);
  }
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') {
    throw new UsageError(`--mesh-url "${value}" is a wildcard address; give one the other replicas can reach`);
  }
}
