import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium, driven by playwright-core (no browser download). */
export const chromiumPath = '/usr/bin/chromium';
export const chromiumAvailable = existsSync(chromiumPath);

/**
 * The `skip` option for a browser test: in CI (CI=true, where .ci/run installs chromium) a missing
 * browser is a failure, not a skip; on a laptop without it the test is skipped with the reason.
 */
export const skipWithoutChromium: string | false =
  !chromiumAvailable && process.env['CI'] !== 'true' ? 'chromium is not installed' : false;

export async function launchChromium(): Promise<Browser> {
  if (!chromiumAvailable)
    throw new Error(`chromium is missing at ${chromiumPath} (CI installs it in .ci/run)`);
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // Reporting API reports (CSP report-to) are sent within a moment, not after a minute.
      '--short-reporting-delay',
    ],
  });
}
