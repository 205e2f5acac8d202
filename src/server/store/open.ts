// The one way in to a Store: the server, `traverse token` and the tests say where the data
// lives, and this picks the engine. Callers see only the Store interface, so a second engine
// (PostgreSQL, for several replicas) is added here and nowhere else.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DATABASE_FILE, SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** Where the data lives: a folder holding the embedded SQLite database. */
export interface StoreLocation {
  readonly dir: string;
}

export interface OpenStoreOptions {
  /** Refuse to create a new, empty database (commands that only read or change existing data). */
  readonly mustExist?: boolean;
}

/** There is no database at the location and the caller asked not to create one. */
export class StoreNotFoundError extends Error {
  constructor(readonly location: string) {
    super(`no database in ${location}`);
  }
}

export async function openStore(location: StoreLocation, options: OpenStoreOptions = {}): Promise<Store> {
  if (options.mustExist && !existsSync(join(location.dir, DATABASE_FILE))) throw new StoreNotFoundError(location.dir);
  return SqliteStore.open(location.dir);
}

/** Whether a database already exists at the location (for messages such as "created ..."). */
export function storeExists(location: StoreLocation): boolean {
  return existsSync(join(location.dir, DATABASE_FILE));
}

/** The file or URL to show a person for this location. */
export function describeStore(location: StoreLocation): string {
  return join(location.dir, DATABASE_FILE);
}
