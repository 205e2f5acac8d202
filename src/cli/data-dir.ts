// Where the server and `traverse token` find the database: --data, else TRAVERSE_DATA, else
// ./traverse-data. Both must agree, so the rule lives in one place.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DATABASE_FILE, SqliteStore } from '../server/store/sqlite.js';
import { CommandFailed } from './errors.js';

export const DEFAULT_DATA_DIR = 'traverse-data';

export function dataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env.TRAVERSE_DATA ?? DEFAULT_DATA_DIR);
}

/** Opens the store; with mustExist, a missing database is an error that says what to do. */
export function openStore(dir: string, mustExist: boolean): SqliteStore {
  if (mustExist && !existsSync(join(dir, DATABASE_FILE))) {
    throw new CommandFailed(
      `no database in ${dir}; pass --data (or TRAVERSE_DATA) pointing at the server's data folder, or create a token first`,
    );
  }
  try {
    return SqliteStore.open(dir);
  } catch (err) {
    throw new CommandFailed(`cannot open the database in ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
