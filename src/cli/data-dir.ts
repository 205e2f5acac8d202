// Where the server and the administration commands (token, identity, allow) find the database:
// --database (a PostgreSQL URL), else --data (a folder with the embedded SQLite file), else
// TRAVERSE_DATABASE_URL, else TRAVERSE_DATA, else ./traverse-data. They must all agree, so the
// rule lives in one place.
import { resolve } from 'node:path';
import { databaseUrlProblem, redactedUrl } from '../server/store/database-url.js';
import { StoreNotFoundError, describeStore, openStore as open, type StoreLocation, type OpenStoreOptions } from '../server/store/open.js';
import type { Store } from '../server/store/store.js';
import { CommandFailed, UsageError } from './errors.js';

export const DEFAULT_DATA_DIR = 'traverse-data';

/** The --database option of every command that works on the server's database. */
export const DATABASE_OPTION = [
  '--database <url>',
  'PostgreSQL database postgres://USER[:PASSWORD]@HOST[:PORT]/DB instead of the --data folder (env TRAVERSE_DATABASE_URL)',
] as const;

export interface StoreFlags {
  data?: string;
  database?: string;
}

export function dataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env.TRAVERSE_DATA ?? DEFAULT_DATA_DIR);
}

/** Where the flags and environment say the data is; exit 2 for both flags or a malformed URL. */
export function storeLocation(flags: StoreFlags): StoreLocation {
  if (flags.database !== undefined && flags.data !== undefined) {
    throw new UsageError('give either --database URL (PostgreSQL) or --data DIR (SQLite), not both');
  }
  const url = flags.database ?? (flags.data === undefined ? process.env.TRAVERSE_DATABASE_URL || undefined : undefined);
  if (url === undefined) return { dir: dataDir(flags.data) };
  const problem = databaseUrlProblem(url);
  const flag = flags.database !== undefined ? '--database' : 'TRAVERSE_DATABASE_URL';
  if (problem) throw new UsageError(`${flag} "${redactedUrl(url)}": ${problem}`);
  // As with --token: a password on the command line is readable by every user (ps).
  if (flags.database !== undefined && redactedUrl(url) !== url) {
    process.stderr.write(
      'traverse: warning: the password in --database can be read by other users of this machine (ps); use TRAVERSE_DATABASE_URL, or PGPASSWORD or ~/.pgpass with a URL without it\n',
    );
  }
  return { url };
}

/** Opens the store; with mustExist, a missing SQLite database is an error that says what to do. */
export async function openStore(location: StoreLocation, mustExist: boolean, onError?: OpenStoreOptions['onError']): Promise<Store> {
  try {
    return await open(location, { mustExist, ...(onError ? { onError } : {}) });
  } catch (err) {
    if (err instanceof StoreNotFoundError) {
      throw new CommandFailed(
        `no database in ${err.location}; pass --data (or TRAVERSE_DATA) pointing at the server's data folder, --database for PostgreSQL, or create a token first`,
      );
    }
    // PostgresStore.open has taken the password out of its errors already.
    throw new CommandFailed(`cannot open the database ${location.url !== undefined ? describeStore(location) : `in ${location.dir}`}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
