// Facts about this installation of Traverse: its version (from package.json, read at run time
// next to the compiled module, so it is always the installed one) and how to run this same
// `traverse` again from another program (ssh's ProxyCommand).
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to dist/src/cli/self.js, the package root three levels up; bundled into a script of
// dist/bundle/ (scripts/bundle-cli.mjs), two levels up. Either way in the repository and in an
// installed package alike (npm always packs package.json).
const ROOT = ['../../../', '../../'].map((up) => new URL(up, import.meta.url)).find((u) => existsSync(new URL('bin/traverse.js', u))) ?? new URL('../../../', import.meta.url);
const PACKAGE_JSON = new URL('package.json', ROOT);
const BIN_JS = fileURLToPath(new URL('bin/traverse.js', ROOT));

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown };
    if (typeof pkg.version === 'string' && pkg.version.length > 0) return pkg.version;
  } catch {
    // fall through
  }
  return 'unknown';
}

/**
 * The argv that runs this traverse again. When it was started through an installed command
 * (e.g. /usr/local/bin/traverse, a link to bin/traverse.js), that absolute path, which keeps
 * working after node is upgraded; otherwise this node binary and the absolute path of
 * bin/traverse.js (`node bin/traverse.js ...` in a checkout, or a test).
 */
export function selfCommand(): string[] {
  const invoked = process.argv[1];
  if (invoked && isAbsolute(invoked) && !invoked.endsWith('.js')) {
    try {
      if (realpathSync(invoked) === realpathSync(BIN_JS) && (statSync(invoked).mode & 0o111) !== 0) return [invoked];
    } catch {
      // fall through
    }
  }
  return [process.execPath, BIN_JS];
}

/** Quotes one word for the POSIX shell that runs ssh's ProxyCommand, if it needs it. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command line for ssh's ProxyCommand (on the command line or in ssh_config): each word
 * quoted for the shell, and "%" doubled, since ssh expands %h, %p, %r... in it first.
 */
export function proxyCommandLine(argv: readonly string[]): string {
  return argv.map((w) => shellQuote(w).replace(/%/g, '%%')).join(' ');
}
