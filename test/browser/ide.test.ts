/**
 * The IDE page in a real browser (Debian's Chromium through playwright-core)
 * against the real stack: the edge in workerd serving the page from its
 * static assets, a real agent, containers in dockerd. Each test signs up on
 * a fresh page and creates its own session, so it passes on its own; each
 * saves a screenshot under test-results/browser/ and fails on any uncaught
 * page error or console error. The first test prints the page's figures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, WebSocketRoute } from 'playwright-core';
import { buildWeb, type WebBuild } from '../../scripts/build-web';
import { hasDocker, requireDocker } from '../helpers/docker';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';
import { chromiumAvailable, launchChromium, ms, withPage } from './harness';
import { IdePage, newAccount } from './ide-page';

const IMAGE = 'node:20-bullseye';
/** Each test waits on events with its own limits; this bounds the whole test. */
const TEST_TIMEOUT = 240_000;
/**
 * A preview page in the iframe, as generous as the preview URL's wait: under a full suite on two cores a
 * page has come just after 30 s (seen once in a fresh-clone run: the frame showed it in the failure's screenshot).
 */
const PREVIEW_PAGE_MS = 90_000;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

if (requireDocker && !chromiumAvailable()) throw new Error('REQUIRE_DOCKER=1 but no Chromium at /usr/bin/chromium (apt-get install chromium)');

describe.skipIf(!hasDocker || !chromiumAvailable())('IDE page (Chromium, real stack)', () => {
  // The Miniflare runner bundles the Worker once: `wrangler dev` reloads it (dropping every socket)
  // whenever a source file changes, which a shared working tree does all the time. Both runners
  // serve the page (page-assets.test.ts).
  const stack = new TestStack({ runner: 'miniflare' });
  let agent: TestAgent;
  let browser: Browser;
  let web: WebBuild;

  beforeAll(async () => {
    web = await buildWeb();
    await ensureTestImage('node');
    await stack.startEdge();
    agent = await stack.startAgent({ name: 'browser-agent' });
    await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await stack.stop();
  });

  /** Signs up on a fresh page and opens a new running session with a shell prompt. */
  async function startSession(ide: IdePage, tag: string, ports: number[] = []): Promise<void> {
    await ide.open();
    await ide.register(newAccount(tag));
    await ide.clickNewSession({ image: IMAGE, ports });
    await ide.waitForStatus('running');
    await ide.waitForPrompt();
  }

  it('registers, creates a session and shows it running, with a shell prompt (and prints the page figures)', async () => {
    await withPage(browser, 'register-create-running', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      const loadMs = await ide.open();
      const tRegister = Date.now();
      await ide.register(newAccount('reg'));
      const registerMs = Date.now() - tRegister;
      const t0 = Date.now();
      await ide.clickNewSession({ image: IMAGE, ports: [3000] });
      await ide.waitForStatus('running');
      const runningMs = Date.now() - t0;
      await ide.waitForPrompt();
      const promptMs = Date.now() - t0;

      expect(await ide.status()).toBe('running');
      expect(await page.locator('[data-testid=session-list] li[data-session-id]').count()).toBe(1);
      expect(await page.getByTestId('connection-state').textContent()).toBe('connected');
      const nav = await page.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        return { domInteractive: n.domInteractive, loadEventEnd: n.loadEventEnd };
      });
      const figures = [
        `bundle: ${web.files.map((f) => `${f.name} ${kib(f.bytes)} (gzip ${kib(f.gzipBytes)})`).join(', ')}; gzip total ${kib(web.gzipTotal)}`,
        `page load to interactive (sign-in form ready): ${ms(loadMs)} (domInteractive ${ms(nav.domInteractive)}, load event end ${ms(nav.loadEventEnd)})`,
        `"register" click to the IDE ready (account created, editor and terminal chunk loaded): ${ms(registerMs)}`,
        `"new session" click to status running: ${ms(runningMs)}; to the first terminal prompt: ${ms(promptMs)}`,
      ];
      process.stdout.write(`[ide figures]\n  ${figures.join('\n  ')}\n`);
    });
  }, TEST_TIMEOUT);

  it('runs a command typed into the terminal and shows its output', async () => {
    await withPage(browser, 'terminal-echo', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await startSession(ide, 'term');
      await ide.run('echo hello-$((6*7))');
      const text = await ide.waitForTerminal(/^hello-42$/m);
      expect(text.split('\n').filter((l) => l === 'hello-42')).toEqual(['hello-42']);
    });
  }, TEST_TIMEOUT);

  /** A tiny HTTP server on port 3000 that reads its own file on every request, so a saved edit shows on reload without a restart. */
  const serverJs = (version: string) =>
    [
      "const fs = require('fs');",
      `const TEXT = 'hello from the preview, ${version}';`,
      "require('http')",
      '  .createServer((req, res) => {',
      "    const text = /const TEXT = '(.*)'/.exec(fs.readFileSync(__filename, 'utf8'))[1];",
      "    res.setHeader('Content-Type', 'text/html; charset=utf-8');",
      '    res.end(`<!doctype html><title>preview</title><h1>${text}</h1>`);',
      '  })',
      "  .listen(3000, '0.0.0.0');",
      '',
    ].join('\n');

  /** Signs up, writes server.js in the editor, saves with Ctrl-S, runs it; resolves once `server-ready` opened the preview. */
  async function runServer(ide: IdePage): Promise<string> {
    await startSession(ide, 'prev', [3000]);
    await ide.newFile('server.js');
    await ide.replaceEditorText(serverJs('v1'));
    await ide.saveWithShortcut();
    await ide.run('node server.js');
    await ide.page.getByTestId('preview-url').filter({ hasText: /preview\.localhost/ }).waitFor({ timeout: 90_000 });
    return (await ide.page.locator('[data-testid=session-list] li[data-session-id]').getAttribute('data-session-id'))!;
  }

  it('edits server.js, runs it, makes port 3000 public and shows the page in the preview iframe on the preview host; an edit shows after reload', async () => {
    await withPage(browser, 'preview-public', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      const sessionId = await runServer(ide);
      const previewHost = `3000-${sessionId}.preview.localhost:${stack.port}`;
      expect(await page.getByTestId('preview-url').textContent()).toBe(`http://${previewHost}/`);
      await page.getByTestId('preview-public').check();
      await page.getByTestId('preview-note').filter({ hasText: /^public/ }).waitFor();
      await page.getByTestId('preview-reload').click();

      const heading = page.frameLocator('[data-testid=preview-frame]').locator('h1');
      await heading.filter({ hasText: 'hello from the preview, v1' }).waitFor({ timeout: PREVIEW_PAGE_MS });
      expect(await heading.textContent()).toBe('hello from the preview, v1');
      const frame = page.frames().find((f) => f !== page.mainFrame())!;
      expect(new URL(frame.url()).host).toBe(previewHost);

      await ide.replaceEditorText(serverJs('v2'));
      await page.getByTestId('save').click();
      await page.getByTestId('editor-status').filter({ hasText: /^saved$/ }).waitFor();
      await page.getByTestId('preview-reload').click();
      await heading.filter({ hasText: 'hello from the preview, v2' }).waitFor({ timeout: PREVIEW_PAGE_MS });
      expect(await heading.textContent()).toBe('hello from the preview, v2');
    });
  }, TEST_TIMEOUT);

  // The preview cookie is `Secure; SameSite=None; Partitioned` on loopback hosts (edge/preview/cookie.ts): a
  // `SameSite=Lax` one is refused in a response inside a cross-site iframe, and an unpartitioned one too
  // where third-party cookies are blocked (a fresh Chromium context).
  it('shows a private port in the preview iframe through its signed link (the partitioned preview cookie)', async () => {
    await withPage(browser, 'preview-private', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await runServer(ide);
      const heading = page.frameLocator('[data-testid=preview-frame]').locator('h1');
      await heading.filter({ hasText: 'hello from the preview, v1' }).waitFor({ timeout: PREVIEW_PAGE_MS });
      expect(await heading.textContent()).toBe('hello from the preview, v1');
      expect(await page.getByTestId('preview-public').isChecked()).toBe(false);

      await ide.replaceEditorText(serverJs('v2'));
      await ide.saveWithShortcut();
      await page.getByTestId('preview-reload').click();
      await heading.filter({ hasText: 'hello from the preview, v2' }).waitFor({ timeout: PREVIEW_PAGE_MS });
      expect(await heading.textContent()).toBe('hello from the preview, v2');
    });
  }, TEST_TIMEOUT);

  it('shows files and folders a command made in the tree without a refresh', async () => {
    await withPage(browser, 'tree-follows-commands', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await startSession(ide, 'tree');
      expect(await ide.treeItem('made-by-command.txt').count()).toBe(0);
      await ide.run('echo made > made-by-command.txt && mkdir folder-by-command');
      await ide.treeItem('made-by-command.txt').waitFor({ timeout: 30_000 });
      await ide.treeItem('folder-by-command').waitFor({ timeout: 30_000 });
      expect(await ide.treeItem('made-by-command.txt').getAttribute('data-type')).toBe('file');
      expect(await ide.treeItem('folder-by-command').getAttribute('data-type')).toBe('directory');
    });
  }, TEST_TIMEOUT);

  it('uploads files dropped onto the tree (one tar) and shows them', async () => {
    await withPage(browser, 'drop-upload', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await startSession(ide, 'drop');
      // What a drop of two files from the desktop hands the page (a script cannot build a folder entry).
      const dataTransfer = await page.evaluateHandle(() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['first dropped file\n'], 'dropped-1.txt', { type: 'text/plain' }));
        dt.items.add(new File([new Uint8Array(300_000).fill(65)], 'dropped-2.bin'));
        return dt;
      });
      await page.getByTestId('file-tree').dispatchEvent('drop', { dataTransfer });
      await page.getByTestId('tree-message').filter({ hasText: /^uploaded 2 items$/ }).waitFor({ timeout: 60_000 });
      await ide.treeItem('dropped-1.txt').waitFor();
      await ide.treeItem('dropped-2.bin').waitFor();
      await ide.run('cat dropped-1.txt; wc -c < dropped-2.bin');
      const text = await ide.waitForTerminal(/^300000$/m);
      expect(text.split('\n').filter((l) => l === 'first dropped file' || l === '300000')).toEqual(['first dropped file', '300000']);
    });
  }, TEST_TIMEOUT);

  it('keeps every line of a command once and in order when the page loses its WebSocket mid-output', async () => {
    const routes: Array<{ page: WebSocketRoute; server: WebSocketRoute }> = [];
    await withPage(
      browser,
      'terminal-survives-drop',
      async ({ page }) => {
        const ide = new IdePage(page, stack.baseUrl);
        await startSession(ide, 'drop');
        const socketsBefore = routes.length;
        await ide.run('for i in $(seq 1 400); do echo "line-$i"; sleep 0.01; done; echo "done-$((1+1))"');
        await ide.waitForTerminal(/^line-40$/m);
        // Cut the page's socket in the middle of the output, both ends, as a network drop would.
        const live = routes[routes.length - 1]!;
        await live.page.close({ code: 4000, reason: 'test drop' });
        await live.server.close({ code: 4000, reason: 'test drop' });
        const text = await ide.waitForTerminal(/^done-2$/m, 90_000);

        expect(routes.length).toBeGreaterThan(socketsBefore);
        const lines = text.split('\n').filter((l) => /^line-\d+$/.test(l));
        expect(lines).toEqual(Array.from({ length: 400 }, (_, i) => `line-${i + 1}`));
        expect(await page.getByTestId('connection-state').textContent()).toBe('reconnected');
      },
      async (context) => {
        await context.routeWebSocket(/\/ws\?/, (ws) => {
          const server = ws.connectToServer();
          routes.push({ page: ws, server });
        });
      },
    );
  }, TEST_TIMEOUT);

  it('opens the same session and follows the same shell after a page reload', async () => {
    await withPage(browser, 'reload-keeps-shell', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await startSession(ide, 'reload');
      await ide.run('echo before-reload-$((2*3))');
      await ide.waitForTerminal(/^before-reload-6$/m);
      await page.reload();
      await ide.waitForStatus('running');
      await ide.waitForTerminal(/^before-reload-6\n.*[$#]$/m);
      await ide.run('echo after-reload-$((3*3))');
      const text = await ide.waitForTerminal(/^after-reload-9$/m);
      expect(text.split('\n').filter((l) => /^(before|after)-reload-\d$/.test(l))).toEqual(['before-reload-6', 'after-reload-9']);
    });
  }, TEST_TIMEOUT);

  it('shows stopped after Stop and running again after Start', async () => {
    await withPage(browser, 'stop-start', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await startSession(ide, 'stop');
      await page.getByTestId('session-stop').click();
      await ide.waitForStatus('stopped');
      expect(await ide.status()).toBe('stopped');
      await page.getByTestId('session-start').click();
      await ide.waitForStatus('running');
      expect(await ide.status()).toBe('running');
    });
  }, TEST_TIMEOUT);
});

describe.skipIf(!hasDocker || !chromiumAvailable())('IDE page idle warning (Chromium, real stack, SESSION_IDLE_TIMEOUT=8000)', () => {
  // Warning 4 s before the idle stop (half the timeout), stop after 8 s without activity.
  const stack = new TestStack({ runner: 'miniflare', edgeVars: { SESSION_IDLE_TIMEOUT: '8000' } });
  let browser: Browser;

  beforeAll(async () => {
    await buildWeb();
    await ensureTestImage('node');
    await stack.startEdge();
    const agent = await stack.startAgent({ name: 'idle-agent' });
    await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await stack.stop();
  });

  it('shows the idle warning as a banner, hides it on "keep working", and shows stopped after the idle stop', async () => {
    await withPage(browser, 'idle-warning', async ({ page }) => {
      const ide = new IdePage(page, stack.baseUrl);
      await ide.open();
      await ide.register(newAccount('idle'));
      await ide.clickNewSession({ image: IMAGE });
      await ide.waitForStatus('running');
      const banner = page.getByTestId('idle-banner');
      await banner.waitFor({ timeout: 60_000 });
      expect(await banner.textContent()).toMatch(/^This session stops in about \d+ s without activity\. Keep working$/);
      await page.getByTestId('keep-working').click();
      await banner.waitFor({ state: 'hidden' });
      // Left alone, it warns again and then stops; the banner goes with the running state.
      await banner.waitFor({ timeout: 60_000 });
      await ide.waitForStatus('stopped', 90_000);
      expect(await ide.status()).toBe('stopped');
      expect(await banner.isHidden()).toBe(true);
    });
  }, TEST_TIMEOUT);
});
