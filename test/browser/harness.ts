/**
 * The browser side of the IDE page tests: Debian's Chromium driven by
 * playwright-core (no browser download), one fresh context per test, a
 * screenshot of every test under test-results/browser/, and a record of
 * every uncaught page error and console error, which fails the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from '../../scripts/lib/stack';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(ROOT, 'test-results/browser');

/** Flags for a quiet, reproducible Chromium: no sandbox (root in CI), no GPU, no calls home. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether the browser suites can run; under REQUIRE_DOCKER=1 (CI, which installs Chromium) a missing browser is a failure, not a skip. */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.REQUIRE_DOCKER === '1') throw new Error(`REQUIRE_DOCKER=1 but no Chromium at ${CHROMIUM}: install Debian's chromium`);
  return false;
}

export async function launchChromium(): Promise<Browser> {
  // launch() gives the browser a fresh temporary --user-data-dir of its own and removes it on close.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 60_000 });
}

export interface PageRun {
  page: Page;
  context: BrowserContext;
  /** Uncaught errors and console errors of the IDE page seen so far. */
  problems: string[];
  /** Console errors of preview frames: the app's, not the page's (a 401 before a port is made public, say). */
  previewConsole: string[];
}

/** Preview hosts (`<port>-<id>.preview.localhost`): what runs there is the session's app. */
const isPreviewUrl = (url: string) => {
  try {
    return new URL(url).hostname.endsWith('.preview.localhost');
  } catch {
    return false;
  }
};

/**
 * Runs `fn` on a fresh page, saves a screenshot as `<name>.png` whatever
 * happens, and throws if the page logged an error or threw one.
 */
export async function withPage(browser: Browser, name: string, fn: (run: PageRun) => Promise<void>, prepare?: (context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await prepare?.(context);
  const page = await context.newPage();
  const problems: string[] = [];
  const previewConsole: string[] = [];
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const at = msg.location().url || page.url();
    (isPreviewUrl(at) ? previewConsole : problems).push(`console.error at ${at}: ${msg.text()}`);
  });
  let failed: unknown;
  try {
    await fn({ page, context, problems, previewConsole });
  } catch (err) {
    failed = err;
  }
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) }).catch(() => undefined);
  await context.close();
  if (failed) throw failed;
  if (problems.length) throw new Error(`the page reported errors:\n${problems.join('\n')}`);
}

/** Milliseconds as text for the printed figures. */
export const ms = (n: number) => `${Math.round(n)} ms`;
