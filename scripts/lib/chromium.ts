/**
 * @module scripts/lib/chromium
 * Headless Chromium for browser tests: Debian's chromium from the provisioning cache (scripts/provision.ts chromium),
 * driven by playwright-core through `executablePath`, so nothing is downloaded. Playwright gives each launch a fresh
 * temporary profile (`--user-data-dir`) and removes it on close; the flags keep the browser from reaching out to
 * anything but the pages a test opens.
 */
import { chromium, type Browser } from 'playwright-core';
import fs from 'node:fs';
import { libraryEnv, readLayout } from './debian.ts';
import { CHROMIUM_DIR } from './paths.ts';

/** Besides playwright's own headless flags. `--no-sandbox`: tests run as root in CI, where the sandbox cannot start. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
] as const;

export async function launchChromium(): Promise<Browser> {
  const layout = readLayout(CHROMIUM_DIR, 'run node scripts/provision.ts chromium');
  if (!fs.existsSync(layout.program)) throw new Error(`chromium not found at ${layout.program}: run node scripts/provision.ts chromium`);
  return chromium.launch({
    executablePath: layout.program,
    headless: true,
    args: [...CHROMIUM_FLAGS],
    env: libraryEnv(layout.libraryDirs) as Record<string, string>,
    timeout: 120_000,
  });
}
