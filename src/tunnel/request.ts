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
