/**
 * The system's Chromium for the dashboard's browser test, driven by playwright-core: never a browser that
 * Playwright downloads. CHROMIUM_PATH overrides the search; without a browser the test skips with one line.
 */
import { accessSync, constants } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The browser binary, or undefined when none is installed. */
export function findChromium(): string | undefined {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) return executable(configured) ? configured : undefined;
  return CANDIDATES.find(executable);
}

/** The skip reason when no browser is found (one line), or false. */
export function noBrowserReason(): string | false {
  if (findChromium()) return false;
  const where = process.env.CHROMIUM_PATH ? `CHROMIUM_PATH=${process.env.CHROMIUM_PATH}` : CANDIDATES.join(', ');
  return `no Chromium found (${where}); install it with "apt-get install chromium" or set CHROMIUM_PATH`;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error('no Chromium found');
  return chromium.launch({ executablePath, headless: true, timeout: 30_000 });
}

/** test-artifacts/ at the repository root (gitignored): screenshots a person can look at after the run. */
export function artifactPath(name: string): string {
  const dir = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return `${dir}${name}`;
}

/** What went wrong inside the page: uncaught errors, console errors and dialogs (an injected script's alert). */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('dialog', (dialog) => {
    problems.push(`dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return problems;
}
