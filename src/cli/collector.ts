// V8's collector, set for a process that carries streams (agent, forward, proxy, ssh, ...).
//
// Every frame a stream seals or opens is a new buffer outside V8's heap (node:crypto has no way to
// encrypt into a buffer of ours), and V8 runs a young-generation collection for every few MB of
// them. What survives two of those moves to the old generation, and V8 sets the old generation's
// next limit from what survived the last full collection times a factor it adapts, down to 1.1.
// After a burst of activity (100 connections opened and closed at once, in bench:streams) the
// heap had shrunk to about 13 MB with a limit just above it, and from then on every stream ran
// ten or more full collections a second: in the lab the forward spent 3-4 s of CPU per GiB
// instead of 1.3-1.7, for good. Growing the old generation to five times what survived (a few
// tens of MB more at most for a node) instead: two full collections in the same run, and the
// forward back at 1.4 s per GiB after the burst.
import { setFlagsFromString } from 'node:v8';

/** The old generation may grow to (1 + this / 100) times what survived the last full collection. */
const HEAP_GROWING_PERCENT = 400;

const STREAM_COMMAND_NAMES = ['agent', 'ping', 'forward', 'proxy', 'speedtest'] as const;

/** A command that carries streams: startPeer takes only these, so a new one must be listed here. */
export type StreamCommand = (typeof STREAM_COMMAND_NAMES)[number];

/**
 * The commands that carry streams (they call startPeer, which tunes the collector too). The
 * bundled CLI's loader (code-cache.ts) tunes it for them before it compiles their script: V8
 * stamps its flags into a code cache and refuses the cache under other flags, so a cache made
 * after the tuning would be refused by every later run that compiled before it.
 */
export const STREAM_COMMANDS: ReadonlySet<string> = new Set(STREAM_COMMAND_NAMES);

/** Applies to this process from the next collection on (V8 reads the flag when it sets a limit). */
export function tuneCollectorForStreams(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
