// Where a command's token comes from: TRAVERSE_TOKEN, --token-file FILE (or "-" for standard
// input), or --token. A token on the command line can be read by every user of the machine
// (ps, /proc/PID/cmdline), so it still works but earns a warning that says what to use instead.
import { Command, Option } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from './errors.js';

const MAX_TOKEN_FILE_BYTES = 4096;

export interface TokenOptionsSpec {
  /** Whether `--token-file -` may read standard input (not for `proxy`, whose stdin is the stream). */
  readonly stdin: boolean;
  readonly help?: string;
}

export function addTokenOptions(cmd: Command, spec: TokenOptionsSpec): Command {
  cmd
    .addOption(new Option('--token <token>', spec.help ?? "this node's token (from `traverse token create`); prefer TRAVERSE_TOKEN or --token-file").env('TRAVERSE_TOKEN'))
    .addOption(
      new Option('--token-file <file>', `read the token from this file${spec.stdin ? ' ("-": standard input)' : ''}; it must not be readable by others`).env(
        'TRAVERSE_TOKEN_FILE',
      ),
    );
  cmd.hook('preAction', async (command) => {
    const file = command.getOptionValue('tokenFile') as string | undefined;
    if (file !== undefined) {
      if (command.getOptionValueSource('token') === 'cli') throw new UsageError('give the token once: --token or --token-file, not both');
      command.setOptionValue('token', await readTokenFile(file, spec.stdin));
    } else if (command.getOptionValueSource('token') === 'cli') {
      process.stderr.write(
        'traverse: warning: --token on the command line can be read by other users of this machine (ps); use TRAVERSE_TOKEN or --token-file instead\n',
      );
    }
  });
  return cmd;
}

async function readTokenFile(file: string, stdinAllowed: boolean): Promise<string> {
  let text: string;
  if (file === '-') {
    if (!stdinAllowed) throw new UsageError('--token-file -: standard input carries the stream here; give a file or TRAVERSE_TOKEN');
    text = await readStdin();
  } else {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      throw new UsageError(`--token-file ${file}: no such file`);
    }
    if ((mode & 0o077) !== 0) {
      throw new UsageError(`--token-file ${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run \`chmod 600 ${file}\``);
    }
    text = readFileSync(file, 'utf8').slice(0, MAX_TOKEN_FILE_BYTES);
  }
  const token = text.trim();
  if (token.length === 0 || /\s/.test(token)) throw new UsageError(`--token-file ${file}: expected one token on one line`);
  return token;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_TOKEN_FILE_BYTES) {
        process.stdin.destroy();
        reject(new UsageError('--token-file -: standard input holds more than a token'));
      }
    });
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}
