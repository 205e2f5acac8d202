// What a client asks of an agent when it opens a stream, and the answer. They travel inside the
// Noise handshake (encrypted to the agent's key), so the relay never sees a target.
import * as z from 'zod';

export const streamRequest = z.discriminatedUnion('kind', [
  /** A TCP connection from the agent to `target` ("host:port"), for forward and proxy. */
  z.object({ kind: z.literal('tcp'), target: z.string().min(3).max(300) }),
  /** The agent sends (download) or swallows (upload) bytes for `seconds`, for speedtest. */
  z.object({ kind: z.literal('speedtest'), direction: z.enum(['download', 'upload']), seconds: z.number().min(0.1).max(60) }),
]);
export type StreamRequest = z.infer<typeof streamRequest>;

export const streamResponse = z.union([z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), error: z.string().max(200) })]);
export type StreamResponse = z.infer<typeof streamResponse>;

/**
 * The version of the stream's frames (frames.ts) the sender speaks, sent beside the request and
 * the response inside the handshake. Both ends must speak the same: a traverse from before
 * version 2 (secret-stream over unsealed frames) sends none, and each side refuses the other
 * with a message that says so instead of exchanging bytes the other cannot read.
 */
export const STREAM_WIRE_VERSION = 2;

/** The frame version a request or response names (1: none named, a traverse from before it). */
export function wireVersionOf(json: unknown): number {
  const v = typeof json === 'object' && json !== null ? (json as { wire?: unknown }).wire : undefined;
  return typeof v === 'number' && Number.isInteger(v) ? v : 1;
}

/** Why a stream cannot open between these versions (for the client's user); null when they match. */
export function wireMismatch(client: number, agent: number): string | null {
  if (client === agent) return null;
  return `the agent speaks stream protocol v${agent}, the client v${client}: run the same traverse version on both ends (update the ${client < agent ? 'client' : 'agent'})`;
}
