// --ca FILE / TRAVERSE_CA for every command that talks to the coordination server, and the one
// warning a plain-HTTP server URL earns. There is deliberately no flag that skips verification.
import { Command, Option } from 'commander';
import { loadTrust, TrustError, type Trust } from '../net/tls-trust.js';
import { cleartextWarning } from '../node/server-url.js';
import { UsageError } from './errors.js';

export function addCaOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--ca <file>', "trust this CA (PEM) for an https:// server, besides Node's CA store; for a private CA").env('TRAVERSE_CA'),
  );
}

/** The trust for --ca (or TRAVERSE_CA), as a usage error when the file is missing or not PEM. */
export function trustFlag(caFile: string | undefined): Trust {
  try {
    return loadTrust(caFile);
  } catch (err) {
    if (err instanceof TrustError) throw new UsageError(err.message);
    throw err;
  }
}

const warned = new Set<string>();

/** Prints, once per process and server, that a plain http:// URL to another host sends the token in clear. */
export function warnIfCleartext(url: URL): void {
  const warning = cleartextWarning(url);
  if (warning === null || warned.has(url.host)) return;
  warned.add(url.host);
  process.stderr.write(`traverse: ${warning}\n`);
}
