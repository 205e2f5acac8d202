// Where the server and `traverse token` find the database: --data, else TRAVERSE_DATA, else
// ./traverse-data. Both must agree, so the rule lives in one place.
import { resolve } from 'node:path';
import { StoreNotFoundError, openStore as open } from '../server/store/open.js';
import type { Store } from '../server/store/store.js';
import { CommandFailed } from './errors.js';

export const DEFAULT_DATA_DIR = 'traverse-data';

export function dataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env.TRAVERSE_DATA ?? DEFAULT_DATA_DIR);
}

/** Opens the store; with mustExist, a missing database is an error that says what to do. */
export async function openStore(dir: string, mustExist: boolean): Promise<Store> {
  try {
    return await open({ dir }, { mustExist });
  } catch (err) {
    if (err instanceof StoreNotFoundError) {
      throw new CommandFailed(
        `no database in ${dir}; pass --data (or TRAVERSE_DATA) pointing at the server's data folder, or create a token first`,
      );
    }
    throw new CommandFailed(`cannot open the database in ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
