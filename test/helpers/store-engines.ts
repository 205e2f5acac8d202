// The store test suite runs once per engine: SQLite in a temporary folder, PostgreSQL in a fresh
// database of a real server (lab/postgres.ts). `forEachEngine` declares the same tests for both;
// PostgreSQL's are skipped with the reason when it is not installed, and fail under
// TRAVERSE_REQUIRE_LAB=1.
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from '../../lab/postgres.js';
import { openStore, type StoreLocation } from '../../src/server/store/open.js';
import type { Store } from '../../src/server/store/store.js';
import { requiredByCi } from './required.js';

export interface StoreEngine {
  readonly name: 'sqlite' | 'postgres';
  /** A new, empty place for a store; removed when the suite ends. */
  location(): Promise<StoreLocation>;
}

/** Declares `body`'s tests once per engine, each inside a describe() named after the engine. */
export function forEachEngine(body: (engine: StoreEngine) => void): void {
  describe('sqlite', () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    body({
      name: 'sqlite',
      location: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'traverse-store-'));
        dirs.push(dir);
        return { dir };
      },
    });
  });

  const why = postgresUnavailable();
  if (why && requiredByCi()) {
    test('postgres', () => {
      throw new Error(`required by TRAVERSE_REQUIRE_LAB=1 but unavailable: ${why}`);
    });
    return;
  }
  describe('postgres', why ? { skip: why } : {}, () => {
    let server: TestPostgres | undefined;
    before(async () => {
      if (!why) server = await startTestPostgres();
    });
    after(async () => server?.stop());
    body({
      name: 'postgres',
      location: async () => ({ url: await server!.createDatabase() }),
    });
  });
}

/** Runs `f` on a store in a fresh location, closing it afterwards. */
export async function withStore(engine: StoreEngine, f: (store: Store, location: StoreLocation) => Promise<void>): Promise<void> {
  const location = await engine.location();
  const store = await openStore(location);
  try {
    await f(store, location);
  } finally {
    await store.close();
  }
}
