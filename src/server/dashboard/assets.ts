// The dashboard's built front end (dist/web, made by scripts/build-web.mjs at `npm run build`
// and at install): read once at start. Hashed file names are cached for good; the page itself is
// revalidated, so a new version is picked up at the next load.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly immutable: boolean;
}

/** What scripts/build-web.mjs writes next to the bundle. */
interface Manifest {
  readonly files: readonly { readonly path: string; readonly type: string }[];
}

/**
 * dist/web: from dist/src/server/dashboard/ when run as compiled, from dist/bundle/ when run from
 * the CLI bundle (scripts/bundle-cli.mjs), which is where this module's code then sits.
 */
export const WEB_DIR = fileURLToPath(
  ['../../../web/', '../web/'].map((up) => new URL(up, import.meta.url)).find((u) => existsSync(new URL('manifest.json', u))) ??
    new URL('../../../web/', import.meta.url),
);

/** URL path -> asset; undefined when the front end was not built (the page says how to build it). */
export function loadAssets(dir: string = WEB_DIR): Map<string, Asset> | undefined {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const out = new Map<string, Asset>();
  out.set('/', { body: readFileSync(join(dir, 'index.html')), type: 'text/html; charset=utf-8', immutable: false });
  for (const f of manifest.files) {
    out.set(`/assets/${f.path}`, { body: readFileSync(join(dir, 'assets', f.path)), type: f.type, immutable: true });
  }
  return out;
}
