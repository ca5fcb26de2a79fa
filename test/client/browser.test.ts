/**
 * The browser bundle (dist/browser/mominai-client.js) in a real Chromium,
 * against the real stack: loaded as an ES module by a page on another
 * origin (CORS), it signs up, creates a session, runs a command over the
 * browser's own WebSocket and boots the WebContainer facade. Proves the
 * bundle needs nothing from Node. Then the preview side of the facade: a
 * preview script and the error reporter running in a real preview page.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { chromiumAvailable } from '../browser/harness';
import type { TestStack } from '../helpers/stack';
import { startStack } from './setup';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const bundle = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client/dist/browser/mominai-client.js');

/** What the page runs: plain browser JavaScript against the bundle. */
const PAGE_SCRIPT = `async (baseUrl) => {
  const m = await import('/mominai-client.js');
  const api = new m.MominaiClient({ baseUrl });
  const n = Date.now().toString(36);
  await api.register({ email: 'browser-' + n + '@example.com', password: 'a long enough password', username: 'browser_' + n });
  const session = await api.sessions.create({});
  const conn = await api.connect(session.id);
  const proc = await conn.run('echo from the browser; echo to stderr >&2');
  const stdout = await new Response(proc.stdout).text();
  const exit = await proc.exit;
  conn.close();
  const wc = await m.WebContainer.boot({ apiUrl: baseUrl, token: api.token, sessionId: session.id });
  await wc.mount({ dir: { directory: { 'a.txt': { file: { contents: 'mounted in a browser' } } } } });
  const back = await wc.fs.readFile('/dir/a.txt', 'utf-8');
  const missing = await wc.fs.readFile('/nope').catch((e) => e.code);
  wc.teardown();
  await wc.tornDown;
  await api.sessions.delete(session.id);
  return { stdout, exit, back, missing };
}`;

/**
 * A page that boots the facade as bolt.diy does (forwardPreviewErrors), sets a
 * preview script, serves a page that throws (busybox httpd) and resolves with
 * the preview's URL; its preview-message events collect in window.__messages.
 */
const PREVIEW_SCRIPT = `async (baseUrl) => {
  const m = await import('/mominai-client.js');
  const api = new m.MominaiClient({ baseUrl });
  const n = Date.now().toString(36);
  await api.register({ email: 'preview-' + n + '@example.com', password: 'a long enough password', username: 'preview_' + n });
  const wc = await m.WebContainer.boot({ apiUrl: baseUrl, token: api.token, forwardPreviewErrors: true });
  window.__wc = wc;
  window.__messages = [];
  wc.on('preview-message', (msg) => window.__messages.push(msg));
  await wc.setPreviewScript('window.__fromIde = "yes";');
  await wc.mount({ site: { directory: { 'index.html': { file: { contents: '<html><head><title>app</title></head><body><script>throw new Error("boom from the preview")</script></body></html>' } } } } });
  const ready = new Promise((resolve) => wc.on('server-ready', (port, url) => port === 3000 && resolve(url)));
  await wc.spawn('httpd', ['-f', '-p', '3000', '-h', '/workspace/site']);
  return ready;
}`;

describe.skipIf(!hasDocker || !chromiumAvailable())('browser bundle (Chromium, real stack, Docker)', () => {
  let stack: TestStack;
  let page: http.Server;
  let pageOrigin: string;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startStack('busybox', 'browser-agent');
    page = http.createServer((req, res) => {
      if (req.url === '/mominai-client.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(fs.readFileSync(bundle));
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>sdk</title>');
      }
    });
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'], timeout: 60_000 });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.close(resolve));
    await stack?.stop();
  });

  it('runs a command and boots the WebContainer facade from a page', async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(pageOrigin);
    // A string, not a function: the test runner rewrites `import()` inside functions it compiles.
    const result = await tab.evaluate(`(${PAGE_SCRIPT})(${JSON.stringify(stack.baseUrl)})`);
    await context.close();
    expect(errors).toEqual([]);
    expect(result).toEqual({ stdout: 'from the browser\n', exit: { exitCode: 0, reason: 'exit' }, back: 'mounted in a browser', missing: 'ENOENT' });
  }, 180_000);

  it('runs the preview script in a preview page and brings the page\'s uncaught error back as preview-message', async () => {
    const context = await browser.newContext();
    const ide = await context.newPage();
    const errors: string[] = [];
    ide.on('pageerror', (e) => errors.push(e.message));
    await ide.goto(pageOrigin);
    const url = String(await ide.evaluate(`(${PREVIEW_SCRIPT})(${JSON.stringify(stack.baseUrl)})`));
    const preview = await context.newPage();
    const previewErrors: string[] = [];
    preview.on('pageerror', (e) => previewErrors.push(e.message));
    await preview.goto(url);
    expect(await preview.evaluate('window.__fromIde')).toBe('yes');
    await ide.waitForFunction('window.__messages.length > 0', undefined, { timeout: 30_000 });
    const messages = (await ide.evaluate('window.__messages')) as Array<Record<string, unknown>>;
    const sessionId = String(await ide.evaluate('window.__wc.sessionId'));
    await ide.evaluate('(async () => { window.__wc.teardown(); await window.__wc.tornDown; })()');
    await context.close();
    expect(previewErrors).toEqual(['boom from the preview']);
    expect(errors).toEqual([]);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ type: 'PREVIEW_UNCAUGHT_EXCEPTION', message: 'Uncaught Error: boom from the preview', pathname: '/', search: '', hash: '', port: 3000, previewId: `3000-${sessionId}` });
    expect(String(messages[0]!.stack)).toContain('boom from the preview');
  }, 180_000);
});
