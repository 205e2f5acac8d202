// The one way in to a Store: the server, `traverse token` and the tests say where the data
// lives, and this picks the engine. Callers see only the Store interface.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { redactedUrl } from './database-url.js';
import { PostgresStore, type PostgresOptions } from './postgres.js';
import { DATABASE_FILE, SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** Where the data lives: a folder holding the embedded SQLite database, or a PostgreSQL URL. */
export type StoreLocation = { readonly dir: string; readonly url?: undefined } | { readonly url: string; readonly dir?: undefined };

export interface OpenStoreOptions {
  /**
   * Refuse to create a new, empty SQLite database (commands that only read or change existing
   * data). A PostgreSQL database is created by its administrator; its tables are made on first use.
   */
  readonly mustExist?: boolean;
  /** PostgreSQL only: how to report a failing idle connection. */
  readonly onError?: PostgresOptions['onError'];
}

/** There is no database at the location and the caller asked not to create one. */
export class StoreNotFoundError extends Error {
  constructor(readonly location: string) {
    super(`no database in ${location}`);
  }
}

export async function openStore(location: StoreLocation, options: OpenStoreOptions = {}): Promise<Store> {
  if (location.url !== undefined) return PostgresStore.open(location.url, options.onError ? { onError: options.onError } : {});
  if (options.mustExist && !existsSync(join(location.dir, DATABASE_FILE))) throw new StoreNotFoundError(location.dir);
  return SqliteStore.open(location.dir);
}

/** Whether a database already exists at the location (for messages such as "created ..."). */
export function storeExists(location: StoreLocation): boolean {
  return location.url !== undefined || existsSync(join(location.dir, DATABASE_FILE));
}

/** The file or URL to show a person for this location (a URL without its password). */
export function describeStore(location: StoreLocation): string {
  return location.url !== undefined ? redactedUrl(location.url) : join(location.dir, DATABASE_FILE);
}
