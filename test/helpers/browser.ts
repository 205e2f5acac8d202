// A real browser for the dashboard's tests and benchmark: Debian's chromium driven by
// playwright-core (no browser download: the system binary, headless, --no-sandbox as root).
// Inside a lab the browser runs in a namespace of its own choosing, through a small wrapper that
// enters it, so it reaches the lab's coordination server like any host there.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.TRAVERSE_CHROMIUM ?? '/usr/bin/chromium';

/** test-output/dashboard at the top of the repo (gitignored): the views' screenshots. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../../test-output/dashboard/', import.meta.url));

/** Why no browser can run here (install: apt-get install chromium), or null when one can. */
export function browserUnavailable(): string | null {
  if (!existsSync(CHROMIUM)) return `no chromium at ${CHROMIUM} (apt-get install chromium, or set TRAVERSE_CHROMIUM)`;
  return null;
}

export async function launchBrowser(netns?: string): Promise<Browser> {
  let executablePath = CHROMIUM;
  let dir: string | null = null;
  if (netns) {
    dir = mkdtempSync(join(tmpdir(), 'traverse-chromium-'));
    executablePath = join(dir, 'chromium-in-netns');
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${netns} ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const removeWrapper = (): void => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const browser = await chromium.launch({ executablePath, headless: true, args, timeout: 30_000 });
    browser.on('disconnected', removeWrapper);
    return browser;
  } catch (err) {
    removeWrapper();
    throw err;
  }
}

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return join(SCREENSHOT_DIR, `${name}.png`);
}
