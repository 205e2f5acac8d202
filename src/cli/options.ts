// Argument parsers shared by commands; each throws UsageError with a message for the user.
import { InvalidArgumentError } from 'commander';
import { EndpointError, parseHostPort, parsePort, type HostPort } from '../net/endpoint.js';
import { UsageError } from './errors.js';
import { parseServerUrls, ServerUrlError } from '../node/server-url.js';
import { warnIfCleartext } from './ca-option.js';

export function intOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be from ${min} to ${max}`);
    return n;
  };
}

export function portOption(value: string): number {
  try {
    return parsePort(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof EndpointError ? err.message : String(err));
  }
}

/** For repeatable options: --stun a --stun b. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** HOST:PORT of a flag, or a usage error that names the flag. */
export function hostPortFlag(flag: string, value: string, defaultPort?: number): HostPort {
  try {
    return parseHostPort(value, defaultPort);
  } catch (err) {
    if (err instanceof EndpointError) throw new UsageError(`${flag} ${err.message}`);
    throw err;
  }
}

/**
 * The coordination server's URL from --server (or TRAVERSE_SERVER), or a usage error naming it.
 * Given several (replicas), a command that asks one server a question uses the first.
 */
export function serverFlag(value: string): URL {
  return serverListFlag(value)[0]!;
}

/** Every server URL of --server URL1,URL2 (or TRAVERSE_SERVER), in order; a usage error names a bad one. */
export function serverListFlag(value: string): URL[] {
  try {
    const urls = parseServerUrls(value);
    for (const url of urls) warnIfCleartext(url);
    return urls;
  } catch (err) {
    if (err instanceof ServerUrlError) throw new UsageError(`--server ${err.message}`);
    throw err;
  }
}
